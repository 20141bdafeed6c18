-- The benchmark's schema in Amber: customers, accounts that reference them,
-- and the bank transfer as a procedure.
DROP MODULE IF EXISTS bench CASCADE;
CREATE MODULE bench AS $$
from amber import Persistent

class Customer(Persistent):
    name: str
    region: int

class Account(Persistent):
    owner: Customer
    balance: int = 0

def transfer(src: Account, dst: Account, amount: int) -> None:
    if src.balance < amount:
        raise ValueError("insufficient funds")
    src.balance -= amount
    dst.balance += amount

def nop() -> int:
    return 1
$$;
