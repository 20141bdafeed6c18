SELECT nop();
