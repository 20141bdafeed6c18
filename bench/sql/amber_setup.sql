-- The benchmark's schema in Amber: customers, accounts that reference them
-- (a reference is indexed: account_owner_idx), the bank transfer as a
-- procedure, and a lookup of a customer's accounts through that index.
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

def owned_total(c: Customer) -> int:
    return sum(a.balance for a in Account.where(owner=c))
$$;
