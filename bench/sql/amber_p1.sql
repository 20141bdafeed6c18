\set id random(:lo, :hi)
SELECT balance FROM bench.account WHERE id = :id;
