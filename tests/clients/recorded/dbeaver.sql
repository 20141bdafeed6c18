-- DBeaver's PostgreSQL driver: what it sends on connect and when its
-- navigator opens a database, a schema and a table (through pgjdbc,
-- prepared; `?` is bound to the schema's or table's oid). Taken from
-- dbeaver/dbeaver at commit 2428359b748778a5a345432906ab3da69289c20c,
-- plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/:
-- PostgreExecutionContext.java (current schema, search_path),
-- PostgreDataSource.java (version, databases), PostgreDatabase.java
-- (schemas, roles, access methods, data types), PostgreRole.java (its
-- privileges), PostgreSchema.java
-- (tables, columns, constraints, indexes, procedures), with a server
-- version of 10 or later and default navigator settings.

-- name: current schema
-- gap: PostgreSQL resolves "$user" to the stand-in schema amber (Amber's own schema, named like its user); Amber never resolves "$user" to its system schema
SELECT current_schema(),session_user

-- name: search path
SHOW search_path

-- name: current database
SELECT current_database()

-- name: database
-- ignore: oid, datfrozenxid, datminmxid, dattablespace, datcollversion, datcollate, datctype
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=current_database()

-- name: schemas
-- ordered
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 ORDER BY nspname

-- name: roles
-- ignore: oid
-- ordered
SELECT a.oid,a.*,pd.description FROM pg_catalog.pg_roles a 
left join pg_catalog.pg_shdescription pd on a.oid = pd.objoid
ORDER BY a.rolname

-- name: access methods
-- ordered
SELECT am.oid,am.* FROM pg_catalog.pg_am am 
ORDER BY am.oid

-- name: data types
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem 
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname IS NOT NULL
AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')

-- name: tables of a schema
-- params: SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'shop'
-- ignore: relfilenode, relpages, reltuples, relallvisible, reltoastrelid, relfrozenxid, relminmxid
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=%s AND c.relkind not in ('i','I','c')

-- name: columns of a table
-- params: SELECT 'shop.orders'::regclass::oid
-- ignore: attoptions
-- ordered
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=%s
ORDER BY a.attnum

-- name: constraints of a schema
-- params: SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'shop'
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE t.relnamespace=%s
ORDER BY c.oid

-- name: indexes of a table
-- params: SELECT 'shop.orders'::regclass::oid
-- ignore: index_rel_size, index_num_scans
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  i.indrelid=%s ORDER BY c.relname

-- name: procedures of a schema
-- params: SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'shop'
SELECT p.oid as poid,p.*,pg_catalog.pg_get_expr(p.proargdefaults, 0) as arg_defaults,d.description
FROM pg_catalog.pg_proc p
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=p.oid and d.classoid='pg_proc'::regclass  AND d.objsubid = 0
WHERE p.pronamespace=%s
ORDER BY p.proname

-- name: role privileges
-- params: SELECT current_database(), 'amber'
-- gap: information_schema.table_privileges lists Amber's tables and views, not PostgreSQL's own catalog relations (which its bootstrap superuser owns)
SELECT * FROM information_schema.table_privileges WHERE table_catalog=%s AND grantee=%s
