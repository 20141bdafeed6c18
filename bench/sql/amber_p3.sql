\set id random(:lo, :hi)
UPDATE bench.account SET balance = balance + 1 WHERE id = :id;
