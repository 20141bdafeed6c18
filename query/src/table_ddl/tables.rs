//! CREATE TABLE and DROP TABLE: declared columns, their types and
//! defaults, keys.

use super::*;

/// Most columns a table may declare (PostgreSQL's limit).
pub(super) const COLUMNS_MAX: usize = 1600;

impl Ddl<'_> {
    pub(super) fn create_table(
        &mut self,
        ct: &ast::CreateTable,
        settings: &Settings,
    ) -> Result<(), SqlError> {
        refuse_options(ct)?;
        let (schema, table) = self.to_create(&ct.name)?;
        reserved_schema(&schema)?;
        let module = self.sql_module(&schema)?;
        if let Some(m) = &module {
            if m.table(&table).is_some() || m.shape.views.iter().any(|v| v.name == table) {
                if ct.if_not_exists {
                    return Ok(());
                }
                return Err(SqlError::new(
                    "42P07",
                    format!("relation \"{table}\" already exists"),
                ));
            }
        } else if schema != PUBLIC_SCHEMA {
            return Err(SqlError::new(
                "3F000",
                format!("schema \"{schema}\" does not exist"),
            ));
        }
        if ct.columns.len() > COLUMNS_MAX {
            return Err(SqlError::new(
                "54011",
                format!("tables can have at most {COLUMNS_MAX} columns"),
            ));
        }
        let mut columns: Vec<ColumnDef> = Vec::with_capacity(ct.columns.len());
        let mut keys: Vec<(Option<String>, Vec<String>, bool)> = Vec::new();
        let mut foreign_keys: Vec<ForeignKeyClause> = Vec::new();
        // (name given, expression, the column it was declared on).
        let mut checks: Vec<(Option<String>, ast::Expr, Option<String>)> = Vec::new();
        for (i, c) in ct.columns.iter().enumerate() {
            let name = ident_value(&c.name);
            if name.starts_with("__amber") {
                return Err(SqlError::new(
                    "42939",
                    format!("column name \"{name}\" is reserved"),
                ));
            }
            if columns.iter().any(|k| k.name == name) {
                return Err(SqlError::new(
                    "42701",
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            let serial = is_serial(&c.data_type);
            let (ty, declared) = match serial {
                true => (serial_type(&c.data_type), None),
                false => sql_type(&c.data_type)?,
            };
            let mut col = ColumnDef::new(u32::try_from(i + 1).unwrap_or(u32::MAX), &name, ty);
            col.declared = declared;
            col.nullable = !serial;
            if serial {
                col.sequence = Some(self.engine.store.allocate_oid()?);
            }
            for opt in &c.options {
                let constraint = opt.name.as_ref().map(ident_value);
                match &opt.option {
                    ColumnOption::Null => col.nullable = true,
                    ColumnOption::NotNull => col.nullable = false,
                    ColumnOption::Default(e) => {
                        col.default = default_value(&col, e, settings)?;
                        col.has_default = !col.default.is_null();
                    }
                    ColumnOption::PrimaryKey(_) => {
                        col.nullable = false;
                        keys.push((constraint, vec![name.clone()], true));
                    }
                    ColumnOption::Unique(_) => keys.push((constraint, vec![name.clone()], false)),
                    ColumnOption::ForeignKey(fk) => foreign_keys.push(ForeignKeyClause::new(
                        constraint,
                        vec![name.clone()],
                        fk,
                    )?),
                    ColumnOption::Comment(_) => {}
                    ColumnOption::Check(cc) => checks.push((
                        cc.name.as_ref().map(ident_value).or(constraint),
                        (*cc.expr).clone(),
                        Some(name.clone()),
                    )),
                    ColumnOption::Generated {
                        generated_as:
                            generated @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                        generation_expr: None,
                        ..
                    } => {
                        if !col.ty.is_integer() || matches!(col.ty, SqlType::Ref(_)) {
                            return Err(SqlError::new(
                                "42611",
                                "identity column type must be smallint, integer, or bigint",
                            ));
                        }
                        col.nullable = false;
                        col.sequence = Some(self.engine.store.allocate_oid()?);
                        col.identity_always = matches!(generated, ast::GeneratedAs::Always);
                    }
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "column option {other} is not supported yet"
                        )))
                    }
                }
            }
            columns.push(col);
        }
        for tc in &ct.constraints {
            match tc {
                TableConstraint::PrimaryKey(pk) => keys.push((
                    pk.name.as_ref().map(ident_value),
                    index_columns(&pk.columns)?,
                    true,
                )),
                TableConstraint::Unique(u) => keys.push((
                    u.name.as_ref().map(ident_value),
                    index_columns(&u.columns)?,
                    false,
                )),
                TableConstraint::Check(cc) => {
                    checks.push((cc.name.as_ref().map(ident_value), (*cc.expr).clone(), None))
                }
                TableConstraint::ForeignKey(fk) => foreign_keys.push(ForeignKeyClause::new(
                    fk.name.as_ref().map(ident_value),
                    fk.columns.iter().map(ident_value).collect(),
                    fk,
                )?),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "table constraint {other} is not supported yet"
                    )))
                }
            }
        }
        if keys.iter().filter(|(_, _, primary)| *primary).count() > 1 {
            return Err(SqlError::new(
                "42P16",
                format!("multiple primary keys for table \"{table}\" are not allowed"),
            ));
        }
        let mut class = ClassDef::new(
            self.engine.store.allocate_oid()?,
            class_name(&table, module.as_deref()),
            table.clone(),
            columns,
        );
        class.hidden_id = true;
        let taken: Vec<String> = module
            .iter()
            .flat_map(|m| m.shape.classes.iter())
            .flat_map(|c| c.indexes.iter().map(|i| i.name.clone()))
            .collect();
        for (name, cols, primary) in keys {
            for c in &cols {
                let Some(col) = class.columns.iter_mut().find(|k| &k.name == c) else {
                    return Err(SqlError::new(
                        "42703",
                        format!("column \"{c}\" named in key does not exist"),
                    ));
                };
                if primary {
                    col.nullable = false;
                }
            }
            let name = match name {
                Some(n) => n,
                None if primary => format!("{table}_pkey"),
                None => format!("{table}_{}_key", cols.join("_")),
            };
            if taken.contains(&name) || class.indexes.iter().any(|i| i.name == name) {
                return Err(SqlError::new(
                    "42P07",
                    format!("relation \"{name}\" already exists"),
                ));
            }
            class.indexes.push(IndexDef {
                id: self.engine.store.allocate_oid()?,
                name,
                columns: cols,
                unique: true,
                primary,
                constraint: true,
                oid: 0,
                constraint_oid: 0,
            });
        }
        for fk in foreign_keys {
            let reference = self.reference(&schema, &class, &fk)?;
            let Some(col) = class.columns.iter_mut().find(|c| c.name == fk.column) else {
                return Err(SqlError::new(
                    "42703",
                    format!(
                        "column \"{}\" referenced in foreign key constraint does not exist",
                        fk.column
                    ),
                ));
            };
            col.references = Some(reference);
        }
        for (name, expr, column) in checks {
            let name = match name {
                Some(n) => n,
                None => check_name(&class, &expr, column.as_deref()),
            };
            if class.checks.iter().any(|k| k.name == name) {
                return Err(SqlError::new(
                    "42710",
                    format!("constraint \"{name}\" for relation \"{table}\" already exists"),
                ));
            }
            let check = amber_catalog::CheckDef {
                name,
                expr: expr.to_string(),
                oid: 0,
            };
            // Compiled now, so that a bad one fails CREATE TABLE.
            crate::checks::compile_one(&class, &check)?;
            class.checks.push(check);
        }
        let mut shape = module
            .as_ref()
            .map(|m| m.shape.clone())
            .unwrap_or_else(empty_shape);
        shape.classes.push(class);
        self.store(&schema, module.as_deref(), shape)
    }

    pub(super) fn drop_table(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let (schema, table) = self.to_find(name)?;
        let module = self.module(&schema)?;
        let Some(class) = module.as_ref().and_then(|m| m.table(&table)).cloned() else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "42P01",
                format!("table \"{table}\" does not exist"),
            ));
        };
        self.sql_module(&schema)?;
        let target = (schema.clone(), table.clone());
        self.drop_dependent_views(&target, &format!("table {table}"), cascade)?;
        self.drop_referencing_keys(&target, cascade)?;
        // Read again: dropping views may have written a new version.
        let module = self
            .sql_module(&schema)?
            .ok_or_else(|| SqlError::internal("module vanished"))?;
        self.delete_data(&class)?;
        let mut shape = module.shape.clone();
        shape.classes.retain(|c| c.id != class.id);
        self.store(&schema, Some(&module), shape)
    }
}

/// Options of CREATE TABLE this version does not build: refused rather
/// than ignored, so no one believes they hold.
pub(super) fn refuse_options(ct: &ast::CreateTable) -> Result<(), SqlError> {
    let what = if ct.temporary {
        Some("TEMPORARY tables")
    } else if ct.query.is_some() {
        Some("CREATE TABLE ... AS")
    } else if ct.like.is_some() {
        Some("CREATE TABLE ... LIKE")
    } else if ct.or_replace {
        Some("CREATE OR REPLACE TABLE")
    } else {
        None
    };
    match what {
        Some(w) => Err(SqlError::unsupported(format!("{w} are not supported yet"))),
        None => Ok(()),
    }
}

/// PostgreSQL's name for an unnamed CHECK: `<table>_<column>_check` when
/// it names one column (or was declared on one), else `<table>_check`;
/// a number is added while the name is taken.
pub(super) fn check_name(class: &ClassDef, expr: &ast::Expr, declared_on: Option<&str>) -> String {
    let named: Vec<String> = crate::checks::identifiers(expr)
        .into_iter()
        .filter(|n| class.columns.iter().any(|c| &c.name == n))
        .collect();
    let base = match (declared_on, named.as_slice()) {
        (Some(c), _) => format!("{}_{c}_check", class.table),
        (None, [one]) => format!("{}_{one}_check", class.table),
        _ => format!("{}_check", class.table),
    };
    let taken = |n: &str| class.checks.iter().any(|k| k.name == n);
    if !taken(&base) {
        return base;
    }
    // Bounded: each step tries a new suffix; a class has finitely many.
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

/// The integer type of a serial column: `serial` is integer, `bigserial`
/// bigint, `smallserial` smallint.
fn serial_type(t: &AstType) -> SqlType {
    match t {
        AstType::Custom(name, _) => match name_parts(name).last().map(String::as_str) {
            Some("bigserial" | "serial8") => SqlType::Int8,
            Some("smallserial" | "serial2") => SqlType::Int2,
            _ => SqlType::Int4,
        },
        _ => SqlType::Int4,
    }
}

/// `serial`, `bigserial`, `smallserial` (and their `serialN` names): an
/// integer column filled from its own sequence.
pub(super) fn is_serial(t: &AstType) -> bool {
    match t {
        AstType::Custom(name, mods) if mods.is_empty() => matches!(
            name_parts(name).as_slice(),
            [n] if ["serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"].contains(&n.as_str())
        ),
        _ => false,
    }
}

/// The stored type of a declared column type, and what it declares beyond
/// it (a length, a precision). `integer`/`smallint`/`real` are their own
/// types; `varchar(n)`, `char(n)` and `numeric(p,s)` are text and numeric
/// with their limits checked on every write.
pub(super) fn sql_type(t: &AstType) -> Result<(SqlType, Option<Declared>), SqlError> {
    let unsupported = || SqlError::unsupported(format!("column type {t} is not supported yet"));
    let length = |l: &Option<ast::CharacterLength>, default: Option<u32>| match l {
        None => Ok(default),
        Some(ast::CharacterLength::IntegerLength { length, .. }) => match u32::try_from(*length) {
            Ok(n) if (1..=CHAR_LENGTH_MAX).contains(&n) => Ok(Some(n)),
            _ if *length == 0 => Err(SqlError::new(
                "22023",
                format!("length for type {} must be at least 1", char_type_name(t)),
            )),
            _ => Err(SqlError::new(
                "22023",
                format!(
                    "length for type {} cannot exceed {CHAR_LENGTH_MAX}",
                    char_type_name(t)
                ),
            )),
        },
        Some(ast::CharacterLength::Max) => Err(unsupported()),
    };
    Ok(match t {
        AstType::Int(_) | AstType::Integer(_) | AstType::Int4(_) | AstType::MediumInt(_) => {
            (SqlType::Int4, None)
        }
        AstType::Int2(_) | AstType::SmallInt(_) | AstType::TinyInt(_) => (SqlType::Int2, None),
        AstType::Int8(_) | AstType::BigInt(_) => (SqlType::Int8, None),
        AstType::Real | AstType::Float4 => (SqlType::Float4, None),
        // float(p): real up to 24 binary digits, as PostgreSQL.
        AstType::Float(ast::ExactNumberInfo::Precision(p)) if (1..=24).contains(p) => {
            (SqlType::Float4, None)
        }
        AstType::Float(ast::ExactNumberInfo::Precision(p)) if !(25..=53).contains(p) => {
            return Err(SqlError::new(
                "22023",
                format!("precision for type float must be between 1 and 53 bits (not {p})"),
            ))
        }
        AstType::Float8 | AstType::Float(_) | AstType::Double(_) | AstType::DoublePrecision => {
            (SqlType::Float8, None)
        }
        AstType::Text | AstType::String(_) => (SqlType::Text, None),
        AstType::Varchar(l) | AstType::CharacterVarying(l) => (
            SqlType::Text,
            Some(Declared::Varchar {
                length: length(l, None)?,
            }),
        ),
        AstType::Char(l) | AstType::Character(l) => (
            SqlType::Text,
            Some(Declared::Char {
                length: length(l, Some(1))?.unwrap_or(1),
            }),
        ),
        AstType::Bool | AstType::Boolean => (SqlType::Bool, None),
        AstType::Bytea => (SqlType::Bytea, None),
        AstType::Numeric(info) | AstType::Decimal(info) | AstType::Dec(info) => {
            let (precision, scale) = match info {
                ast::ExactNumberInfo::None => return Ok((SqlType::Numeric, None)),
                ast::ExactNumberInfo::Precision(p) => (*p, 0),
                ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            let precision = u32::try_from(precision)
                .ok()
                .filter(|p| (1..=NUMERIC_PRECISION_MAX).contains(p))
                .ok_or_else(|| {
                    SqlError::new(
                        "22023",
                        format!(
                            "NUMERIC precision {precision} must be between 1 and {NUMERIC_PRECISION_MAX}"
                        ),
                    )
                })?;
            // PostgreSQL 15 allows a negative scale or one above the
            // precision; Amber keeps 0 <= scale <= precision.
            let scale = u32::try_from(scale)
                .ok()
                .filter(|s| *s <= precision)
                .ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "NUMERIC scale {scale} outside 0..={precision} is not supported yet"
                    ))
                })?;
            (
                SqlType::Numeric,
                Some(Declared::Numeric { precision, scale }),
            )
        }
        AstType::Date => (SqlType::Date, None),
        AstType::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => {
            (SqlType::Timestamptz, None)
        }
        AstType::Timestamp(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
            (SqlType::Timestamp, None)
        }
        AstType::JSON | AstType::JSONB => (SqlType::Jsonb, None),
        AstType::Array(ast::ArrayElemTypeDef::SquareBracket(inner, _))
        | AstType::Array(ast::ArrayElemTypeDef::AngleBracket(inner)) => match sql_type(inner)? {
            (SqlType::Array(_) | SqlType::Jsonb, _) => return Err(unsupported()),
            // An element's length or precision (`varchar(20)[]`) is not
            // kept yet: the array is of the plain type.
            (inner, _) => (SqlType::Array(Box::new(inner)), None),
        },
        _ => return Err(unsupported()),
    })
}

/// PostgreSQL's limits on declared lengths and precisions.
const CHAR_LENGTH_MAX: u32 = 10_485_760;
const NUMERIC_PRECISION_MAX: u32 = 1000;

fn char_type_name(t: &AstType) -> &'static str {
    match t {
        AstType::Char(_) | AstType::Character(_) => "character",
        _ => "character varying",
    }
}

/// A column's DEFAULT: a constant, converted to the column's type now.
pub(super) fn default_value(
    col: &ColumnDef,
    e: &ast::Expr,
    settings: &Settings,
) -> Result<Json, SqlError> {
    let Some(v) = crate::constant::constant_value(e, &[], settings)? else {
        return Err(SqlError::unsupported(format!(
            "DEFAULT {e} is not supported yet (only constants)"
        )));
    };
    let stored = convert::scalar_to_json(&col.ty, &v, settings)?;
    // Checked now (`varchar(2) DEFAULT 'abc'` fails at INSERT in
    // PostgreSQL; here at CREATE), applied at each INSERT.
    crate::declared::apply(col, stored.clone())?;
    Ok(stored)
}
