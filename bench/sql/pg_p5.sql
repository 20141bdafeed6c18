SELECT c.region, count(*) AS accounts, sum(a.balance) AS total
FROM account a JOIN customer c ON a.owner = c.id
GROUP BY c.region ORDER BY total DESC LIMIT 10;
