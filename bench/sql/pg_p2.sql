\set src random(:lo, :hi)
\set dst random(:lo, :hi)
SELECT transfer(:src, :dst, 1);
