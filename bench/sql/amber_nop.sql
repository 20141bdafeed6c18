SELECT bench.nop();
