//! Live upgrade of a class that has objects (`CREATE OR REPLACE MODULE`),
//! atomic with the deploy's transaction. A call that began on the old
//! version finishes on it (it reads its snapshot, and a writer under the
//! old version fails at commit with 40001: it read the generation key the
//! deploy wrote); a call after the commit sees only converted objects;
//! nothing ever sees a half-converted class.
//!
//! What converts, attribute by attribute (matched by name):
//! - an attribute added with a default: lazily. Nothing is written; the
//!   class begins a new layout and the column records its default
//!   (`ColumnDef::filled`), which an object of an older layout reads where
//!   it lacks the field (`row::decode`, `columnar.rs`); an object written
//!   since holds its own value. Added `| None` without one: NULL (nothing
//!   to write);
//! - an attribute dropped: lazily. Its field is skipped when read (its
//!   column id is never given again: `ClassDef::column_id_max`) and goes
//!   when the object is next written;
//! - a type change no value can fail (`row::converts_lazily`: `int` to
//!   `float` or `str`, scalars to `str`): lazily. The column takes a new
//!   id and remembers its earlier ids and types (`ColumnDef::converted`);
//!   an object that lacks the new field reads its earlier one converted
//!   (`row::convert_lazily`, the assignment cast), and the indexes on it
//!   are built again;
//! - any other type change: every object rewritten, each value converted
//!   as an assignment cast would (`str` to `int`, `float` to `int`...);
//! - an attribute made non-nullable: every object read, none written.
//!
//! What refuses the deploy (the old version stays), naming the class, the
//! attribute and the first object that fails: an added attribute that is
//! neither nullable nor defaulted (23502), a value that does not convert
//! (42804), a None left in an attribute that became non-nullable (23502).
//!
//! Cost: nothing per object for added and dropped attributes and lazy
//! type changes (their indexes aside); one read and one write per object
//! for another type change, in the deploy's one transaction (its writes are held until commit, about the objects'
//! stored size plus a small overhead each).

use crate::class_objects;
use crate::error::SqlError;
use amber_catalog::{row, ClassDef, ColumnDef, Converted, Filled};
use amber_storage::Txn;
use serde_json::Value as Json;

/// What happens to one attribute of the new version.
enum Step<'a> {
    /// Converted from the old type.
    Convert(&'a ColumnDef),
    /// Added with this stored default.
    Fill(Json),
    /// Kept, now non-nullable: every object must hold a value.
    Require,
}

/// What converting a class did.
pub(crate) struct Migrated {
    /// Objects rewritten (0 when every change was lazy).
    pub rewritten: u64,
    /// Columns that took new ids (lazy type changes): the indexes on them
    /// are built again, their keys' encoding having changed.
    pub retyped: Vec<String>,
}

/// Converts the objects of `old` (which has objects) into `new` (the same
/// class, same id): lazily where reading can (an added attribute's
/// default is recorded in `new` and a new layout begun; a dropped
/// attribute's field is skipped when read; a type change that cannot fail
/// gives the column a new id and objects are converted as read), by
/// rewriting every object where a value changes type in a way that may
/// fail.
pub(crate) fn migrate_class(
    txn: &mut Txn,
    module: &str,
    old: &ClassDef,
    new: &mut ClassDef,
) -> Result<Migrated, SqlError> {
    debug_assert_eq!(old.id, new.id);
    let mut steps: Vec<(&ColumnDef, Step<'_>)> = Vec::new();
    for col in &new.columns {
        match old.columns.iter().find(|o| o.id == col.id) {
            Some(o) if o.ty != col.ty => steps.push((col, Step::Convert(o))),
            Some(o) if o.nullable && !col.nullable => steps.push((col, Step::Require)),
            Some(_) => {}
            None if col.has_default && !col.default.is_null() => {
                let what = format!("{}.{} default", new.name, col.name);
                let stored = crate::canonical::canonical_value(&col.ty, &col.default, &what)?;
                steps.push((col, Step::Fill(stored)))
            }
            None if col.nullable => {}
            None => {
                return Err(SqlError::new(
                    "23502",
                    format!(
                        "cannot add attribute {}.{}.{}: class {} has objects, and the attribute has no default and is not nullable; the old version stays",
                        module, new.name, col.name, new.name
                    ),
                )
                .with_hint("Give it a default, or annotate it `T | None`."));
            }
        }
    }
    // Added defaults are read lazily: objects of the layout before read
    // them, objects written from now on hold their own values.
    let fills: Vec<(u32, Json)> = steps
        .iter()
        .filter_map(|(col, step)| match step {
            Step::Fill(v) => Some((col.id, v.clone())),
            _ => None,
        })
        .collect();
    let new_layout = old.layout.max(new.layout) + u32::from(!fills.is_empty());
    // Type changes are lazy when every one of them converts every value
    // without error (and is not also tightened to NOT NULL, nor of a
    // column with a lazily read default): each such column takes a new
    // id and remembers its earlier ones, and objects are converted as
    // they are read. One change that may fail rewrites every object.
    let retypes: Vec<(u32, Converted)> = steps
        .iter()
        .filter_map(|(col, step)| match step {
            Step::Convert(from) => Some((
                col.id,
                Converted {
                    id: from.id,
                    ty: from.ty.clone(),
                },
            )),
            _ => None,
        })
        .collect();
    let lazy_retypes = steps.iter().all(|(col, step)| match step {
        Step::Convert(from) => {
            row::converts_lazily(&from.ty, &col.ty)
                && from.filled.is_none()
                && (col.nullable || !from.nullable)
        }
        _ => true,
    });
    let rewrite = !lazy_retypes;
    let check = steps.iter().any(|(_, s)| matches!(s, Step::Require));
    let steps: Vec<(ColumnDef, Step<'_>)> = steps
        .into_iter()
        .filter(|(_, s)| rewrite || !matches!(s, Step::Convert(_)))
        .map(|(c, s)| (c.clone(), s))
        .collect();
    new.layout = new_layout;
    let mut retyped = Vec::new();
    if lazy_retypes && !retypes.is_empty() {
        for (id, was) in retypes {
            let fresh = new.column_id_max + 1;
            if fresh > row::COLUMN_ID_MAX {
                return Err(SqlError::new(
                    "54011",
                    format!(
                        "class {} has used more than {} column ids",
                        new.name,
                        row::COLUMN_ID_MAX
                    ),
                ));
            }
            new.column_id_max = fresh;
            if let Some(c) = new.columns.iter_mut().find(|c| c.id == id) {
                let earlier = old
                    .columns
                    .iter()
                    .find(|o| o.id == id)
                    .map(|o| o.converted.clone())
                    .unwrap_or_default();
                c.id = fresh;
                c.converted = std::iter::once(was).chain(earlier).collect();
                retyped.push(c.name.clone());
            }
        }
    }
    for (id, value) in fills {
        if let Some(c) = new.columns.iter_mut().find(|c| c.id == id) {
            c.filled = Some(Filled {
                layout: new_layout,
                value,
            });
        }
    }
    if !rewrite && !check {
        return Ok(Migrated {
            rewritten: 0,
            retyped,
        });
    }
    let new: &ClassDef = new;
    let mut rewritten = 0u64;
    class_objects::for_each(txn, old, |txn, key, oid, mut obj| {
        obj.retain(|k, _| new.columns.iter().any(|c| &c.name == k));
        for (col, step) in &steps {
            let current = obj.get(&col.name).filter(|v| !v.is_null()).cloned();
            match (step, current) {
                (Step::Convert(from), Some(v)) => {
                    let converted = crate::canonical::convert_value(&col.ty, &v).map_err(|e| {
                        SqlError::new(
                            "42804",
                            format!(
                                "attribute {}.{}.{} changes type from {} to {} and object {oid}'s value {v} cannot be converted; the old version stays",
                                module,
                                new.name,
                                col.name,
                                from.ty.pg_name(),
                                col.ty.pg_name()
                            ),
                        )
                        .with_detail(Some(e.message))
                        .with_hint("Convert it in `def __migrate__(self, old)`, or keep the type.")
                    })?;
                    obj.insert(col.name.clone(), converted);
                }
                (Step::Fill(default), None) => {
                    obj.insert(col.name.clone(), default.clone());
                }
                (Step::Require | Step::Convert(_), None) if !col.nullable => {
                    return Err(SqlError::new(
                        "23502",
                        format!(
                            "attribute {}.{}.{} may not be None in the new version, but object {oid} holds None; the old version stays",
                            module, new.name, col.name
                        ),
                    ));
                }
                _ => {}
            }
        }
        // Checked only (a column became non-nullable): nothing to write.
        if !rewrite {
            return Ok(());
        }
        let stored = row::encode(new, &obj)
            .map_err(|e| SqlError::new("22P02", format!("object {oid}: {e}")))?;
        txn.put(key, &stored)?;
        rewritten += 1;
        Ok(())
    })?;
    Ok(Migrated { rewritten, retyped })
}

/// A class whose objects its own `__migrate__` converts, once the new
/// version is stored in the deploy's transaction.
pub(crate) struct Pending {
    /// The class as the version replaced declared it.
    pub old: ClassDef,
    /// Its Python name in the new version.
    pub class: String,
}

/// Objects sent to one `__migrate__` call (each travels as JSON both ways).
const MIGRATE_BATCH_MAX: usize = 512;

/// Converts the objects of each pending class through its `__migrate__`
/// (a worker call per batch, in the deploy's transaction), stores their
/// new states as any Python write is stored, then builds the class's
/// indexes. The first object whose `__migrate__` raises, or whose result
/// cannot be stored, refuses the deploy naming it.
pub(crate) fn run_python(
    engine: &std::sync::Arc<crate::session::Engine>,
    handle: &amber_runtime::TxnHandle,
    module: &std::sync::Arc<amber_catalog::ModuleDef>,
    pending: &[Pending],
    when: (
        Option<std::time::Instant>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ),
) -> Result<(), SqlError> {
    use amber_catalog::{class_prefix, class_range_end, object_key, object_of_key};
    for p in pending {
        let new = module
            .class(&p.class)
            .ok_or_else(|| SqlError::internal(format!("class {} vanished", p.class)))?;
        let old_types: Vec<(String, String)> = p
            .old
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.describe()))
            .collect();
        let failed = |oid: u64, error: &str| {
            SqlError::new(
                "P0001",
                format!(
                    "__migrate__ of class {}.{} failed on object {oid}: {error}; the old version stays",
                    module.name, new.name
                ),
            )
        };
        let end = class_range_end(new.id);
        let mut start = class_prefix(new.id);
        loop {
            let rows = crate::dml::lock(handle)?.scan_range(&start, &end, MIGRATE_BATCH_MAX)?;
            let done = rows.len() < MIGRATE_BATCH_MAX;
            if let Some((last, _)) = rows.last() {
                start = last.clone();
                start.push(0);
            }
            let mut batch = Vec::with_capacity(rows.len());
            for (key, bytes) in &rows {
                let Some((_, oid)) = object_of_key(key) else {
                    continue;
                };
                let state = row::decode(&p.old, bytes)
                    .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
                batch.push((oid, Json::Object(state)));
            }
            if !batch.is_empty() {
                let spec = amber_runtime::CallSpec {
                    module: module.clone(),
                    class: Some(new.name.clone()),
                    function: "__migrate__".into(),
                    deadline: when.0,
                    cancel: Some(when.1.clone()),
                };
                // The worker reads through this transaction: no lock is
                // held while it runs.
                let result = tokio::task::block_in_place(|| {
                    engine
                        .runtime
                        .migrate_blocking(spec, old_types.clone(), batch, handle.clone())
                })?;
                let converted = match result {
                    Json::Array(items) => items,
                    Json::Object(f) => {
                        let oid = f.get("failed").and_then(Json::as_u64).unwrap_or(0);
                        let error = f.get("error").and_then(Json::as_str).unwrap_or("");
                        return Err(failed(oid, error));
                    }
                    _ => return Err(SqlError::internal("__migrate__ returned no states")),
                };
                let mut txn = crate::dml::lock(handle)?;
                for item in converted {
                    let (Some(oid), Some(state)) = (
                        item.get(0).and_then(Json::as_u64),
                        item.get(1).and_then(Json::as_str),
                    ) else {
                        return Err(SqlError::internal("__migrate__ returned a bad state"));
                    };
                    let stored = crate::canonical::canonical_object(new, state)
                        .map_err(|e| failed(oid, &e.message))?;
                    txn.put(&object_key(new.id, oid), &stored)?;
                }
            }
            if done {
                break;
            }
        }
        // Its indexes have fresh ids (`index/deploy.rs` deferred them):
        // built over the converted objects, nothing to drop first.
        let mut txn = crate::dml::lock(handle)?;
        for index in &new.indexes {
            crate::index::build(&mut txn, new, index)
                .map_err(|e| crate::index::deploy::refused(e, &new.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use amber_catalog::{row, SqlType};
    use serde_json::{json, Value as Json};

    /// A lazy type change reads what the eager one stored: for every pair
    /// `row::converts_lazily` allows, `row::convert_lazily` gives what an
    /// assignment cast (`canonical::convert_value`) gives, and never fails
    /// where the cast would.
    #[test]
    fn lazy_conversions_are_the_assignment_casts() {
        let samples: Vec<(SqlType, Vec<Json>)> = vec![
            (
                SqlType::Int8,
                vec![json!(0), json!(-5), json!(i64::MAX), json!(i64::MIN)],
            ),
            (SqlType::Int4, vec![json!(7), json!(-2147483648)]),
            (SqlType::Int2, vec![json!(-32768)]),
            (
                SqlType::Float8,
                vec![
                    json!(1.5),
                    json!(0.1),
                    json!(-0.0),
                    json!(1e300),
                    json!(-2.5e-300),
                    json!("NaN"),
                    json!("Infinity"),
                    json!("-Infinity"),
                    json!(3.0),
                ],
            ),
            (SqlType::Float4, vec![json!(0.5)]),
            (SqlType::Bool, vec![json!(true), json!(false)]),
            (
                SqlType::Numeric,
                vec![json!("1.50"), json!("-3"), json!("NaN")],
            ),
            (SqlType::Date, vec![json!("2024-02-29"), json!("infinity")]),
            (SqlType::Timestamptz, vec![json!("2024-01-01T10:00:00Z")]),
            (SqlType::Timestamp, vec![json!("2024-01-01T10:00:00")]),
        ];
        let targets = [SqlType::Int8, SqlType::Float8, SqlType::Text];
        let mut compared = 0;
        for (from, values) in &samples {
            for raw in values {
                let Ok(v) = crate::canonical::canonical_value(from, raw, "sample") else {
                    continue;
                };
                for to in &targets {
                    if from == to || !row::converts_lazily(from, to) {
                        continue;
                    }
                    let cast = crate::canonical::convert_value(to, &v)
                        .unwrap_or_else(|e| panic!("{from:?} {v} -> {to:?}: {}", e.message));
                    assert_eq!(row::convert_lazily(to, &v), cast, "{from:?} {v} -> {to:?}");
                    compared += 1;
                }
            }
        }
        assert!(compared >= 25, "{compared}");
    }
}
