CREATE SCHEMA shop;
CREATE TABLE shop.customer (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE, joined date DEFAULT '2024-01-01');
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customer (id), total numeric DEFAULT 0, placed timestamptz, paid boolean NOT NULL DEFAULT false, score double precision, created timestamp);
CREATE INDEX orders_placed_idx ON shop.orders (placed);
CREATE VIEW shop.big_orders AS SELECT id, customer_id, total FROM shop.orders WHERE total > 100;
CREATE TABLE public.events (id bigint PRIMARY KEY, kind text, at timestamptz, payload jsonb, tags text[], raw bytea);
INSERT INTO shop.customer VALUES (1, 'Ada', 'ada@example.com', '2024-02-03'), (2, 'Grace', NULL, '2024-01-01');
INSERT INTO shop.orders (customer_id, total, placed, paid) VALUES (1, 150.50, '2024-03-01 10:00+00', true), (2, 20, NULL, false);
INSERT INTO public.events VALUES (1, 'login', '2024-01-01 00:00+00', '{"a": 1}', '{x,y}', '\x01');
