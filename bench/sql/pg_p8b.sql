\set c random(:lo, :hi)
SELECT owned_total(:c);
