-- The same schema in PostgreSQL 15, and the transfer in plpython3u with
-- prepared plans kept in SD (what a careful PL/Python author writes).
CREATE EXTENSION IF NOT EXISTS plpython3u;
DROP TABLE IF EXISTS account;
DROP TABLE IF EXISTS customer;
CREATE TABLE customer (id bigint PRIMARY KEY, name text NOT NULL, region bigint NOT NULL);
CREATE TABLE account (id bigint PRIMARY KEY, owner bigint NOT NULL REFERENCES customer,
                      balance bigint NOT NULL DEFAULT 0);
-- Amber indexes a reference itself; PostgreSQL needs it declared.
CREATE INDEX account_owner_idx ON account (owner);
CREATE OR REPLACE FUNCTION transfer(src bigint, dst bigint, amount bigint) RETURNS void AS $$
if "get" not in SD:
    SD["get"] = plpy.prepare("SELECT balance FROM account WHERE id = $1", ["bigint"])
    SD["upd"] = plpy.prepare("UPDATE account SET balance = balance + $2 WHERE id = $1",
                             ["bigint", "bigint"])
b = plpy.execute(SD["get"], [src])[0]["balance"]
if b < amount:
    raise ValueError("insufficient funds")
plpy.execute(SD["upd"], [src, -amount])
plpy.execute(SD["upd"], [dst, amount])
$$ LANGUAGE plpython3u;
CREATE OR REPLACE FUNCTION owned_total(c bigint) RETURNS bigint AS $$
if "owned" not in SD:
    SD["owned"] = plpy.prepare("SELECT balance FROM account WHERE owner = $1", ["bigint"])
return sum(r["balance"] for r in plpy.execute(SD["owned"], [c]))
$$ LANGUAGE plpython3u;
CREATE OR REPLACE FUNCTION nop() RETURNS bigint AS $$
return 1
$$ LANGUAGE plpython3u;
