//! The one way the store runs a statement, whatever the engine.
//!
//! A [`Query`] is SQL both engines accept (`$1` placeholders, BIGINT times, the migrations'
//! two type tokens) and its arguments, bound with [`Query::bind`] (or several at once with
//! [`Query::binds`]) from the few Rust types the schema stores ([`Bind`]: UUIDs, integers,
//! booleans, text, bytes and their `Option`s). [`Db`] runs it outside a transaction and [`Tx`]
//! inside one, with the same four verbs as sqlx (`fetch_one`, `fetch_optional`, `fetch_all`,
//! `execute`); rows come back as [`Values`], decoded by the same code on both engines
//! ([`Values::take`]), or whole with the `fetch_*_as` verbs ([`FromValues`]: a column's type,
//! a tuple, a row type). [`Query::any_of`] writes "column IN a set" once for both engines.
//! The per-engine `match` lives here and in `reader`, nowhere else: the rest of the store never
//! names sqlx (`tests/store/sharding.rs`, `only_db_names_sqlx`).
//!
//! ```ignore
//! let q = Query::new("SELECT kid, wrapped FROM holder_keys WHERE holder_id = $1").bind(holder.as_uuid());
//! let row: Option<(String, Vec<u8>)> = db.fetch_optional_as(q, "read data key").await?;
//! ```
//!
//! Reads outside a transaction go through [`crate::db::reader`]'s inline SQLite connections
//! when the database has them.

use std::borrow::Cow;

use sqlx::{AssertSqlSafe, Column, Row, TypeInfo, ValueRef as _};

use crate::db::{Db, Tx};
use crate::error::StoreError;

/// The SQL type of an argument, so that a NULL is typed as its column on PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Uuid,
    Int,
    Bool,
    Text,
    Blob,
}

/// A statement's argument.
#[derive(Clone, Debug)]
pub enum Arg<'a> {
    Null(Kind),
    Uuid(uuid::Uuid),
    Int(i64),
    /// A condition's value: BOOLEAN on PostgreSQL, an integer on SQLite.
    Bool(bool),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
    /// One array parameter (PostgreSQL only: [`Query::any_of`]), of UUIDs or text.
    List(Vec<Arg<'a>>),
}

/// A Rust value a [`Query`] binds.
pub trait Bind<'a> {
    /// The argument's SQL type (a `None` binds a NULL of it).
    const KIND: Kind;
    fn arg(self) -> Arg<'a>;
}

macro_rules! bind_copy {
    ($($t:ty => $kind:ident, $v:ident => $e:expr;)*) => {$(
        impl<'a> Bind<'a> for $t {
            const KIND: Kind = Kind::$kind;
            fn arg(self) -> Arg<'a> {
                let $v = self;
                $e
            }
        }
        impl<'a> Bind<'a> for &$t {
            const KIND: Kind = Kind::$kind;
            fn arg(self) -> Arg<'a> {
                let $v = *self;
                $e
            }
        }
    )*};
}

bind_copy! {
    uuid::Uuid => Uuid, v => Arg::Uuid(v);
    i64 => Int, v => Arg::Int(v);
    i32 => Int, v => Arg::Int(v.into());
    u32 => Int, v => Arg::Int(v.into());
    bool => Bool, v => Arg::Bool(v);
}

impl<'a> Bind<'a> for &'a str {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg<'a> {
        Arg::Text(Cow::Borrowed(self))
    }
}

impl<'a> Bind<'a> for &'a String {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg<'a> {
        Arg::Text(Cow::Borrowed(self))
    }
}

impl<'a> Bind<'a> for String {
    const KIND: Kind = Kind::Text;
    fn arg(self) -> Arg<'a> {
        Arg::Text(Cow::Owned(self))
    }
}

impl<'a> Bind<'a> for &'a [u8] {
    const KIND: Kind = Kind::Blob;
    fn arg(self) -> Arg<'a> {
        Arg::Blob(Cow::Borrowed(self))
    }
}

impl<'a> Bind<'a> for &'a Vec<u8> {
    const KIND: Kind = Kind::Blob;
    fn arg(self) -> Arg<'a> {
        Arg::Blob(Cow::Borrowed(self))
    }
}

impl<'a> Bind<'a> for Vec<u8> {
    const KIND: Kind = Kind::Blob;
    fn arg(self) -> Arg<'a> {
        Arg::Blob(Cow::Owned(self))
    }
}

impl<'a, const N: usize> Bind<'a> for &'a [u8; N] {
    const KIND: Kind = Kind::Blob;
    fn arg(self) -> Arg<'a> {
        Arg::Blob(Cow::Borrowed(self))
    }
}

impl<'a, T: Bind<'a>> Bind<'a> for Option<T> {
    const KIND: Kind = T::KIND;
    fn arg(self) -> Arg<'a> {
        match self {
            Some(v) => v.arg(),
            None => Arg::Null(T::KIND),
        }
    }
}

impl<'a, T> Bind<'a> for &'a Option<T>
where
    &'a T: Bind<'a>,
{
    const KIND: Kind = <&'a T as Bind<'a>>::KIND;
    fn arg(self) -> Arg<'a> {
        match self {
            Some(v) => v.arg(),
            None => Arg::Null(Self::KIND),
        }
    }
}

/// Several arguments at once, in order: a tuple of [`Bind`] values ([`Query::binds`]).
pub trait Binds<'a> {
    fn push_to(self, args: &mut Vec<Arg<'a>>);
}

macro_rules! binds_tuple {
    ($($v:ident: $t:ident),+) => {
        impl<'a, $($t: Bind<'a>),+> Binds<'a> for ($($t,)+) {
            fn push_to(self, args: &mut Vec<Arg<'a>>) {
                let ($($v,)+) = self;
                $(args.push($v.arg());)+
            }
        }
    };
}

binds_tuple!(a: A, b: B);
binds_tuple!(a: A, b: B, c: C);
binds_tuple!(a: A, b: B, c: C, d: D);
binds_tuple!(a: A, b: B, c: C, d: D, e: E);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F, g: G);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J, k: K);
binds_tuple!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J, k: K, l: L);

/// A statement and its arguments, in order.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) args: Vec<Arg<'a>>,
}

impl<'a> Query<'a> {
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
        }
    }

    /// A statement whose text is built at run time (a multi-row `VALUES` list, a table
    /// name from a fixed list): never from a caller's input, which is always bound.
    pub fn built(sql: String) -> Self {
        Self {
            sql: Cow::Owned(sql),
            args: Vec::new(),
        }
    }

    /// `sql` with `{in}` standing for "IN `keys`" (e.g. `WHERE id {in}`, no other argument):
    /// one array parameter on PostgreSQL (`= ANY($1)`, planned once, where a 500-parameter
    /// `IN` list takes tens of milliseconds to plan), a list of parameters on SQLite.
    pub fn any_of<T: Bind<'a>>(
        engine: crate::db::Engine,
        sql: &str,
        keys: impl IntoIterator<Item = T>,
    ) -> Self {
        let keys: Vec<Arg<'a>> = keys.into_iter().map(Bind::arg).collect();
        match engine {
            crate::db::Engine::Postgres => Self {
                sql: Cow::Owned(sql.replace("{in}", "= ANY($1)")),
                args: vec![Arg::List(keys)],
            },
            crate::db::Engine::Sqlite => {
                let marks: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
                Self {
                    sql: Cow::Owned(sql.replace("{in}", &format!("IN ({})", marks.join(", ")))),
                    args: keys,
                }
            }
        }
    }

    pub fn bind(mut self, v: impl Bind<'a>) -> Self {
        self.args.push(v.arg());
        self
    }

    /// Binds the values of a tuple, in order: `.binds((holder.as_uuid(), now, &sealed))`.
    pub fn binds(mut self, values: impl Binds<'a>) -> Self {
        values.push_to(&mut self.args);
        self
    }

    /// Binds every argument of `args`, in order.
    pub fn bind_all(mut self, args: impl IntoIterator<Item = Arg<'a>>) -> Self {
        self.args.extend(args);
        self
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// A sqlx query of either engine from a [`Query`]'s text (moved, never copied) and its
/// arguments (borrowed: they outlive the statement's run) (`$list`: how an array parameter
/// binds, PostgreSQL only).
macro_rules! sqlx_query {
    ($sql:expr, $args:expr) => {
        sqlx_query!($sql, $args, |out, _items| out)
    };
    ($sql:expr, $args:expr, |$o:ident, $items:ident| $list:expr) => {{
        let args: &Vec<Arg<'_>> = $args;
        let mut out = match $sql {
            Cow::Borrowed(s) => sqlx::query(s),
            Cow::Owned(s) => sqlx::query(AssertSqlSafe(s)),
        };
        for a in args {
            out = match a {
                Arg::Null(Kind::Uuid) => out.bind(None::<uuid::Uuid>),
                Arg::Null(Kind::Int) => out.bind(None::<i64>),
                Arg::Null(Kind::Bool) => out.bind(None::<bool>),
                Arg::Bool(v) => out.bind(*v),
                Arg::Null(Kind::Text) => out.bind(None::<&str>),
                Arg::Null(Kind::Blob) => out.bind(None::<&[u8]>),
                Arg::Uuid(v) => out.bind(*v),
                Arg::Int(v) => out.bind(*v),
                Arg::Text(v) => out.bind(v.as_ref()),
                Arg::Blob(v) => out.bind(v.as_ref()),
                Arg::List($items) => {
                    let $o = out;
                    $list
                }
            };
        }
        out
    }};
}

/// Binds an array parameter on PostgreSQL.
macro_rules! pg_query {
    ($sql:expr, $args:expr) => {
        sqlx_query!($sql, $args, |out, items| {
            match items.first() {
                Some(Arg::Uuid(_)) => out.bind(
                    items
                        .iter()
                        .filter_map(|a| match a {
                            Arg::Uuid(u) => Some(*u),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Some(Arg::Int(_)) => out.bind(
                    items
                        .iter()
                        .filter_map(|a| match a {
                            Arg::Int(n) => Some(*n),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => out.bind(
                    items
                        .iter()
                        .filter_map(|a| match a {
                            Arg::Text(t) => Some(t.to_string()),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        })
    };
}

/// One column's value. A UUID read from SQLite arrives as its 16 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Value {
    #[default]
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Uuid(uuid::Uuid),
}

/// A Rust type a [`Value`] converts to (the value back if it does not).
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self, Value>;
}

impl FromValue for i64 {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Int(n) => Ok(n),
            v => Err(v),
        }
    }
}

impl FromValue for i32 {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Int(n) => i32::try_from(n).map_err(|_| Value::Int(n)),
            v => Err(v),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Int(n) => Ok(n != 0),
            v => Err(v),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Text(s) => Ok(s),
            v => Err(v),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Blob(b) => Ok(b),
            v => Err(v),
        }
    }
}

impl FromValue for uuid::Uuid {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Uuid(u) => Ok(u),
            Value::Blob(b) if b.len() == 16 => uuid::Uuid::from_slice(&b).map_err(|_| Value::Blob(b)),
            v => Err(v),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self, Value> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a [`Query`]'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values(pub(crate) Vec<Value>);

impl Values {
    /// Takes column `i` (0-based) as a `T`; a missing column or another type is an integrity
    /// error (the SQL and the code disagree), never a panic.
    pub fn take<T: FromValue>(&mut self, i: usize) -> Result<T, StoreError> {
        let v = self
            .0
            .get_mut(i)
            .map(std::mem::take)
            .ok_or_else(|| StoreError::Integrity(format!("column {i} missing")))?;
        T::from_value(v).map_err(|v| {
            let kind = match v {
                Value::Null => "NULL",
                Value::Int(_) => "an integer",
                Value::Text(_) => "text",
                Value::Blob(_) => "bytes",
                Value::Uuid(_) => "a UUID",
            };
            StoreError::Integrity(format!(
                "column {i}: {kind} where {} was expected",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// A row decoded whole: a column's type ([`FromValue`]) for one column, a tuple of them for
/// several, in the statement's order.
pub trait FromValues: Sized {
    fn from_values(v: Values) -> Result<Self, StoreError>;
}

impl<T: FromValue> FromValues for T {
    fn from_values(mut v: Values) -> Result<Self, StoreError> {
        v.take(0)
    }
}

macro_rules! from_values_tuple {
    ($($t:ident: $i:tt),+) => {
        impl<$($t: FromValue),+> FromValues for ($($t,)+) {
            fn from_values(mut v: Values) -> Result<Self, StoreError> {
                Ok(($(v.take::<$t>($i)?,)+))
            }
        }
    };
}

from_values_tuple!(A: 0, B: 1);
from_values_tuple!(A: 0, B: 1, C: 2);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3, E: 4);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8);
from_values_tuple!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7, I: 8, J: 9);

/// A sqlx row as [`Values`], whatever the engine.
pub(crate) trait IntoValues {
    fn values(&self) -> Result<Values, sqlx::Error>;
}

impl IntoValues for sqlx::sqlite::SqliteRow {
    fn values(&self) -> Result<Values, sqlx::Error> {
        let r = self;
        let mut vals = Vec::with_capacity(r.len());
        for i in 0..r.len() {
            let kind = {
                let raw = r.try_get_raw(i)?;
                if raw.is_null() {
                    "NULL"
                } else {
                    type_tag(raw.type_info().name())
                }
            };
            vals.push(match kind {
                "NULL" => Value::Null,
                "INTEGER" => Value::Int(r.try_get(i)?),
                "TEXT" => Value::Text(r.try_get(i)?),
                "BLOB" => Value::Blob(r.try_get(i)?),
                other => return Err(undecodable(i, other)),
            });
        }
        Ok(Values(vals))
    }
}

impl IntoValues for sqlx::postgres::PgRow {
    fn values(&self) -> Result<Values, sqlx::Error> {
        let r = self;
        let mut vals = Vec::with_capacity(r.len());
        for (i, col) in r.columns().iter().enumerate() {
            vals.push(match col.type_info().name() {
                "INT8" => r.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
                "INT4" => r
                    .try_get::<Option<i32>, _>(i)?
                    .map_or(Value::Null, |n| Value::Int(n.into())),
                "INT2" => r
                    .try_get::<Option<i16>, _>(i)?
                    .map_or(Value::Null, |n| Value::Int(n.into())),
                "BOOL" => r
                    .try_get::<Option<bool>, _>(i)?
                    .map_or(Value::Null, |b| Value::Int(b.into())),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => r
                    .try_get::<Option<String>, _>(i)?
                    .map_or(Value::Null, Value::Text),
                "BYTEA" => r
                    .try_get::<Option<Vec<u8>>, _>(i)?
                    .map_or(Value::Null, Value::Blob),
                "UUID" => r
                    .try_get::<Option<uuid::Uuid>, _>(i)?
                    .map_or(Value::Null, Value::Uuid),
                other => return Err(undecodable(i, other)),
            });
        }
        Ok(Values(vals))
    }
}

/// sqlx's SQLite value type names, as `'static` tags.
fn type_tag(name: &str) -> &'static str {
    match name {
        "INTEGER" | "INT" | "BIGINT" | "BOOLEAN" => "INTEGER",
        "TEXT" => "TEXT",
        "BLOB" => "BLOB",
        "NULL" => "NULL",
        _ => "OTHER",
    }
}

fn undecodable(i: usize, ty: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: i.to_string(),
        source: format!("type {ty} is not read by the store").into(),
    }
}

fn rows<R: IntoValues>(rs: &[R], limit: usize, what: &'static str) -> Result<Vec<Values>, StoreError> {
    rs.iter()
        .take(limit)
        .map(IntoValues::values)
        .collect::<Result<_, _>>()
        .map_err(StoreError::db(what))
}

/// Runs a sqlx query for at most `limit` rows (one: `fetch_optional`, which stops at the first).
macro_rules! fetch_rows {
    ($query:expr, $executor:expr, $limit:expr, $what:expr) => {
        if $limit == 1 {
            let r = $query
                .fetch_optional($executor)
                .await
                .map_err(StoreError::db($what))?;
            rows(r.as_slice(), 1, $what)
        } else {
            let rs = $query.fetch_all($executor).await.map_err(StoreError::db($what))?;
            rows(&rs, $limit, $what)
        }
    };
}

fn exactly_one(mut rows: Vec<Values>, what: &'static str) -> Result<Values, StoreError> {
    rows.pop()
        .ok_or_else(|| StoreError::db(what)(sqlx::Error::RowNotFound))
}

/// The typed verbs, on both [`Db`] and [`Tx`]: rows decoded as `T` ([`FromValues`]).
macro_rules! typed_verbs {
    ($on:ty $(, $m:tt)?) => {
        impl $on {
            /// The first row of `q` as a `T`; none is an error (`RowNotFound`).
            pub async fn fetch_one_as<T: FromValues>(&$($m)? self, q: Query<'_>, what: &'static str) -> Result<T, StoreError> {
                T::from_values(self.fetch_one(q, what).await?)
            }

            /// The first row of `q` as a `T`, if any.
            pub async fn fetch_optional_as<T: FromValues>(
                &$($m)? self,
                q: Query<'_>,
                what: &'static str,
            ) -> Result<Option<T>, StoreError> {
                self.fetch_optional(q, what).await?.map(T::from_values).transpose()
            }

            /// Every row of `q` as a `T`.
            pub async fn fetch_all_as<T: FromValues>(&$($m)? self, q: Query<'_>, what: &'static str) -> Result<Vec<T>, StoreError> {
                self.fetch_all(q, what).await?.into_iter().map(T::from_values).collect()
            }
        }
    };
}

typed_verbs!(Db);
typed_verbs!(Tx, mut);

impl Db {
    /// The first row of `q`; none is an error (`RowNotFound`).
    pub async fn fetch_one(&self, q: Query<'_>, what: &'static str) -> Result<Values, StoreError> {
        exactly_one(self.read_rows(q, 1, what).await?, what)
    }

    /// At most one row of `q` (the first), by the fastest path of the engine.
    pub async fn fetch_optional(
        &self,
        q: Query<'_>,
        what: &'static str,
    ) -> Result<Option<Values>, StoreError> {
        Ok(self.read_rows(q, 1, what).await?.pop())
    }

    /// Every row of `q`.
    pub async fn fetch_all(&self, q: Query<'_>, what: &'static str) -> Result<Vec<Values>, StoreError> {
        self.read_rows(q, usize::MAX, what).await
    }

    /// Runs `q` outside a transaction (on SQLite, on the connection pool this handle reads
    /// from: see [`Db::writer`]); the number of rows it changed.
    pub async fn execute(&self, q: Query<'_>, what: &'static str) -> Result<u64, StoreError> {
        let Query { sql, args } = q;
        match self {
            Db::Sqlite { read, .. } => sqlx_query!(sql, &args)
                .execute(read)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(p) => pg_query!(sql, &args).execute(p).await.map(|r| r.rows_affected()),
        }
        .map_err(StoreError::db(what))
    }

    async fn read_rows(
        &self,
        q: Query<'_>,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<Values>, StoreError> {
        match self {
            Db::Sqlite { read, fast, .. } => {
                if let Some(fast) = fast {
                    match fast.run(&q, limit) {
                        Ok(rows) => return Ok(rows),
                        // Busy (a recovery), or anything else: sqlx runs it again off this
                        // thread, waits as long as the pool does and reports its own error.
                        Err(e) => tracing::debug!(error = %e, what, "point read goes to the pool"),
                    }
                }
                let Query { sql, args } = q;
                fetch_rows!(sqlx_query!(sql, &args), read, limit, what)
            }
            Db::Postgres(p) => {
                let Query { sql, args } = q;
                fetch_rows!(pg_query!(sql, &args), p, limit, what)
            }
        }
    }
}

impl Tx {
    /// The first row of `q` in this transaction; none is an error (`RowNotFound`).
    pub async fn fetch_one(&mut self, q: Query<'_>, what: &'static str) -> Result<Values, StoreError> {
        exactly_one(self.read_rows(q, 1, what).await?, what)
    }

    /// At most one row of `q` (the first), in this transaction.
    pub async fn fetch_optional(
        &mut self,
        q: Query<'_>,
        what: &'static str,
    ) -> Result<Option<Values>, StoreError> {
        Ok(self.read_rows(q, 1, what).await?.pop())
    }

    /// Every row of `q`, in this transaction.
    pub async fn fetch_all(&mut self, q: Query<'_>, what: &'static str) -> Result<Vec<Values>, StoreError> {
        self.read_rows(q, usize::MAX, what).await
    }

    /// Runs a script of several statements without arguments (a migration) in this
    /// transaction.
    pub(crate) async fn execute_script(&mut self, sql: String) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut **t)
                .await
                .map(|_| ()),
            Tx::Postgres(t) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut **t)
                .await
                .map(|_| ()),
        }
    }

    /// Runs `q` in this transaction; the number of rows it changed.
    pub async fn execute(&mut self, q: Query<'_>, what: &'static str) -> Result<u64, StoreError> {
        let Query { sql, args } = q;
        match self {
            Tx::Sqlite(t) => sqlx_query!(sql, &args)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
            Tx::Postgres(t) => pg_query!(sql, &args)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(StoreError::db(what))
    }

    async fn read_rows(
        &mut self,
        q: Query<'_>,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<Values>, StoreError> {
        let Query { sql, args } = q;
        match self {
            Tx::Sqlite(t) => fetch_rows!(sqlx_query!(sql, &args), &mut **t, limit, what),
            Tx::Postgres(t) => fetch_rows!(pg_query!(sql, &args), &mut **t, limit, what),
        }
    }
}
