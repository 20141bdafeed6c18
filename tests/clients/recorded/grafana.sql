-- Grafana's PostgreSQL data source: the queries its configuration page
-- (version, TimescaleDB detection) and its query editor (schemas, tables,
-- columns of a table) send. Taken from grafana/grafana at commit
-- 12f912ab8d010f4d95a4043a0efaa20fc4ca0100,
-- public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts
-- (getVersion, getTimescaleDBVersion, showSchemas, showTables,
-- getSchema), with the table names the editor passes filled in; the
-- backend's health check is `SELECT 1`.

-- name: health check
SELECT 1

-- name: version
SELECT current_setting('server_version_num')::int/100 as version

-- name: timescaledb
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'

-- name: schemas
-- ordered
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name

-- name: tables
-- ordered
SELECT
    CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1

-- name: tables of a schema
-- ordered
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'shop'
      ORDER BY 1

-- name: columns of a qualified table
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('shop.orders'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('shop.orders'))[1]
          AND quote_ident(table_name) = (parse_ident('shop.orders'))[2]
        ELSE quote_ident(table_name) = 'shop.orders'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END

-- name: columns of a table on the search path
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('events'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('events'))[1]
          AND quote_ident(table_name) = (parse_ident('events'))[2]
        ELSE quote_ident(table_name) = 'events'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
