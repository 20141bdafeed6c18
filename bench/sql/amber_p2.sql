\set src random(:lo, :hi)
\set dst random(:lo, :hi)
CALL bench.transfer(:src, :dst, 1);
