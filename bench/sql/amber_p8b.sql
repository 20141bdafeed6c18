\set c random(:lo, :hi)
SELECT bench.owned_total(:c);
