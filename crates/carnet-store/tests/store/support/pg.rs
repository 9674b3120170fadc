//! PostgreSQL for the store's test binaries: `CARNET_TEST_DATABASE_URL`, and a fresh schema of
//! it per store so that runs never meet each other's rows.

/// `CARNET_TEST_DATABASE_URL`, when set (the PostgreSQL cases are skipped without it).
pub fn pg_base() -> Option<String> {
    std::env::var("CARNET_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh schema of `base`, as a URL whose connections search it first.
pub async fn pg_schema_url(base: &str) -> String {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(base)
        .await
        .expect("connect to CARNET_TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}
