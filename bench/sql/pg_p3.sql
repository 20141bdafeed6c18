\set id random(:lo, :hi)
UPDATE account SET balance = balance + 1 WHERE id = :id;
