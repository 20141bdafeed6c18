\set c random(:lo, :hi)
SELECT id, balance FROM account WHERE owner = :c;
