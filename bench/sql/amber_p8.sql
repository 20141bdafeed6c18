\set c random(:lo, :hi)
SELECT id, balance FROM bench.account WHERE owner = :c;
