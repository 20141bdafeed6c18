SELECT c.region, count(*) AS accounts, sum(a.balance) AS total
FROM bench.account a JOIN bench.customer c ON a.owner = c.id
GROUP BY c.region ORDER BY total DESC LIMIT 10;
