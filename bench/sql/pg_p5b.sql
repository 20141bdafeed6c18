SELECT balance % 100 AS g, count(*), sum(balance) FROM account GROUP BY 1 ORDER BY 1;
