//! Blob store conformance: the same cases on the local directory back-end, the in-memory one,
//! and an S3-compatible service when `CARNET_TEST_S3_ENDPOINT` is set (`scripts/test` starts
//! a local one with moto). Cites S-30 (durable, verified blobs).

use bytes::Bytes;
use carnet_store::blob::S3Config;
use carnet_store::{BlobHash, BlobStore, StoreError};

async fn conformance(store: BlobStore) {
    let a = store.put(Bytes::from_static(b"sealed bytes A")).await.unwrap();
    assert_eq!(a, BlobHash::of(b"sealed bytes A"));
    // Idempotent: same bytes, same name, one blob.
    assert_eq!(store.put(Bytes::from_static(b"sealed bytes A")).await.unwrap(), a);
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let b = store.put(Bytes::from(big.clone())).await.unwrap();
    assert_eq!(&store.get(&a).await.unwrap()[..], b"sealed bytes A");
    assert_eq!(&store.get(&b).await.unwrap()[..], &big[..]);
    let mut listed: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.hash.to_string())
        .collect();
    listed.sort();
    let mut expected = vec![a.to_string(), b.to_string()];
    expected.sort();
    assert_eq!(listed, expected);
    store.delete(&a).await.unwrap();
    store.delete(&a).await.unwrap(); // deleting twice is fine
    assert!(matches!(store.get(&a).await, Err(StoreError::BlobMissing { .. })));
    assert_eq!(store.list().await.unwrap().len(), 1);
    store.check().await.unwrap();
}

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    conformance(BlobStore::local(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn in_memory() {
    conformance(BlobStore::memory()).await;
}

#[tokio::test]
async fn local_directory_removes_crash_leftovers_and_never_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path()).unwrap();
    let h = store.put(Bytes::from_static(b"x")).await.unwrap();
    // A crash mid-write leaves a temp file; it is never listed and is removed at next open.
    std::fs::write(dir.path().join("tmp").join(format!("{h}.deadbeef")), b"partial").unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
    let _reopened = BlobStore::local(dir.path()).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

#[tokio::test]
async fn s3_compatible_service() {
    let Ok(endpoint) = std::env::var("CARNET_TEST_S3_ENDPOINT") else {
        eprintln!("CARNET_TEST_S3_ENDPOINT not set: S3 case skipped");
        return;
    };
    let cfg = S3Config {
        bucket: std::env::var("CARNET_TEST_S3_BUCKET").unwrap_or_else(|_| "carnet-test".into()),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        prefix: Some(format!("t-{}", uuid::Uuid::new_v4().simple())),
    };
    conformance(BlobStore::s3(&cfg).unwrap()).await;
    // A corrupted object is detected on read: write different bytes under a hash's name.
    let store = BlobStore::s3(&cfg).unwrap();
    let h = store.put(Bytes::from_static(b"original")).await.unwrap();
    if let BlobStore::Object(os) = &store {
        use object_store::ObjectStoreExt;
        let path = object_store::path::Path::from(format!("blobs/{}/{}", &h.as_str()[..2], h));
        os.put(&path, object_store::PutPayload::from_static(b"tampered"))
            .await
            .unwrap();
    }
    assert!(matches!(store.get(&h).await, Err(StoreError::BlobCorrupt { .. })));
}
