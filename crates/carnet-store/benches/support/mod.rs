//! What every store benchmark shares: opening a fresh store on SQLite, then on PostgreSQL
//! when `CARNET_BENCH_DATABASE_URL` (or `CARNET_TEST_DATABASE_URL`) names a server, and
//! reading percentiles. Not a benchmark itself (Cargo finds benches as `benches/*.rs`).

use std::future::Future;
use std::sync::Arc;

use carnet_domain::SystemClock;
use carnet_store::Store;
use carnet_store::datadir::{StoreSettings, open_store};

/// Runs `run` on a fresh SQLite store in a temporary directory, then on fresh PostgreSQL
/// schemas `bench_{name}_main` and `bench_{name}_keys` when a server is configured.
#[allow(dead_code)] // each bench uses what it needs
pub fn on_both_engines<F, Fut>(name: &str, run: F)
where
    F: Fn(&'static str, Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(&StoreSettings::new(dir.path()), Arc::new(SystemClock))
            .await
            .expect("open");
        run("sqlite", store).await;
        if let Some(url) = postgres_url() {
            let store = open_postgres(&url, name).await;
            run("postgres", store).await;
        }
    });
}

fn postgres_url() -> Option<String> {
    std::env::var("CARNET_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("CARNET_TEST_DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// A store on fresh schemas of the server at `url` (its own directory for blobs).
async fn open_postgres(url: &str, name: &str) -> Store {
    let pool = sqlx::PgPool::connect(url).await.expect("pg");
    let (main, keys) = (format!("bench_{name}_main"), format!("bench_{name}_keys"));
    for schema in [&main, &keys] {
        for s in [
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("CREATE SCHEMA {schema}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(s))
                .execute(&pool)
                .await
                .expect("schema");
        }
    }
    pool.close().await;
    // The blobs' directory lives as long as the benchmark process.
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let mut st = StoreSettings::new(&dir);
    let sep = if url.contains('?') { '&' } else { '?' };
    st.database_url = Some(format!("{url}{sep}options=-c%20search_path%3D{main}"));
    st.keys_url = Some(format!("{url}{sep}options=-c%20search_path%3D{keys}"));
    open_store(&st, Arc::new(SystemClock)).await.expect("open pg")
}

/// The `p`th percentile of `lat` (sorted in place).
#[allow(dead_code)]
pub fn pct(lat: &mut [u128], p: usize) -> u128 {
    lat.sort_unstable();
    lat[(lat.len() * p / 100).min(lat.len() - 1)]
}
