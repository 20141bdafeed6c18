\set g random(1, 1000)
SELECT c.name, a.id, a.balance FROM customer c JOIN account a ON a.owner = c.id WHERE c.name = 'c' || :g;
