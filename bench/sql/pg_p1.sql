\set id random(:lo, :hi)
SELECT balance FROM account WHERE id = :id;
