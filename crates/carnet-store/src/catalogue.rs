//! The catalogue of referenced services (CA-1, CA-2, CA-4) and the authorisation server's
//! codes and tokens for apps (CA-3, issue 9). The rules are pure
//! (`carnet_domain::catalogue`); this module records each workflow step with compare-and-set on
//! the service's version, and keeps OAuth codes and tokens as hashes.
//!
//! **CA-4, at once:** a token is live only while its service is listed — every check joins the
//! service's state and convention dates, so a withdrawal or an expired convention stops every
//! token on the next request, and the withdrawal also marks them revoked in the same
//! transaction. A token is live only while its space is open or activated, and while the app's
//! grant stays in the holder's directory (the gate checks that on every item; disconnecting
//! also revokes the tokens here).

use carnet_domain::HolderId;
use carnet_domain::access::{AppId, Category, Grant, Grantee};
use carnet_domain::catalogue::{Application, Criterion, Referencing, ReferencingRole, Step};
use uuid::Uuid;

use crate::Store;
use crate::crypto::{random_bytes, sha256_hex};
use crate::db::query::Query;
use crate::error::StoreError;

/// Lifetime of an app's access token (short: revocation is checked on each request anyway).
pub const ACCESS_TOKEN_SECONDS: i64 = 600;
/// Lifetime of an authorisation code (RFC 6749 recommends at most 10 minutes).
pub const CODE_SECONDS: i64 = 60;
/// Lifetime of a refresh token (each use replaces it: rotation).
pub const REFRESH_TOKEN_SECONDS: i64 = 30 * 86_400;

fn random_token() -> Result<String, StoreError> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A person of the referencing workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferencingAccount {
    pub id: String,
    pub role: ReferencingRole,
    pub name: String,
}

/// A service: its client id (the OAuth `client_id`), publisher and workflow record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub client_id: String,
    pub publisher_id: String,
    pub record: Referencing,
    pub version: i64,
    pub created_at: carnet_domain::Timestamp,
}

impl Service {
    pub fn app(&self) -> AppId {
        AppId(self.client_id.clone())
    }
}

/// A recorded step, as the publisher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    pub seq: i64,
    pub at: carnet_domain::Timestamp,
    pub account_id: String,
    pub role: ReferencingRole,
    pub step: Step,
}

/// What an authorisation code stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeGrant {
    pub client_id: String,
    /// The space the app will act in.
    pub holder: HolderId,
    /// Who consented: the holder, or their representative.
    pub subject: HolderId,
    pub redirect_uri: String,
    /// PKCE `code_challenge` (S256).
    pub challenge: String,
    pub scope: String,
}

/// A live app token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppToken {
    pub kind: TokenKind,
    pub client_id: String,
    pub holder: HolderId,
    pub subject: HolderId,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn tag(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// Tokens issued for a code or a refresh.
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    /// The space the tokens act in (the SMART `patient` of the token response).
    pub holder: HolderId,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

/// Why a code or refresh token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeem {
    /// Unknown, expired, revoked, or for another client.
    Invalid,
    /// Used before: everything issued from it is now revoked (RFC 9700 4.14, RFC 6749 4.1.2).
    Replayed,
}

type ServiceRow = (String, String, String, i64, i64);

fn service_from(r: ServiceRow) -> Result<Service, StoreError> {
    let (client_id, publisher_id, record, version, created_at) = r;
    let record: Referencing = serde_json::from_str(&record)
        .map_err(|e| StoreError::Integrity(format!("service {client_id}: {e}")))?;
    Ok(Service {
        client_id,
        publisher_id,
        record,
        version,
        created_at: carnet_domain::Timestamp::from_micros(created_at),
    })
}

const LIVE_TOKEN: &str = "SELECT t.kind, t.client_id, t.holder_id, t.subject_id, t.scope, t.issued_at, t.expires_at \
     FROM oauth_tokens t JOIN services s ON s.client_id = t.client_id JOIN holders h ON h.id = t.holder_id \
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.used_at IS NULL AND t.expires_at > $2 \
     AND s.state = 'approved' AND s.listed_from <= $2 AND s.listed_until > $2 \
     AND h.lifecycle IN ('open', 'activated')";

impl Store {
    /// Creates an account of the referencing workflow; its bearer token is shown once.
    pub async fn create_referencing_account(
        &self,
        role: ReferencingRole,
        name: &str,
    ) -> Result<(ReferencingAccount, String), StoreError> {
        let token = random_token()?;
        let id = format!("{}-{}", role.tag(), hex::encode(random_bytes::<6>()?));
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO referencing_accounts (id, role, name, token_hash, created_at) VALUES ($1, $2, \
                 $3, $4, $5)",
            )
            .binds((
                &id,
                role.tag(),
                name,
                sha256_hex(token.as_bytes()),
                self.now().as_micros(),
            )),
            "create referencing account",
        )
        .await?;
        tx.commit().await?;
        Ok((
            ReferencingAccount {
                id,
                role,
                name: name.to_string(),
            },
            token,
        ))
    }

    /// The account a bearer token belongs to.
    pub async fn referencing_account(&self, token: &str) -> Result<Option<ReferencingAccount>, StoreError> {
        let row = self
            .db
            .fetch_optional_as::<(String, String, String)>(
                Query::new("SELECT id, role, name FROM referencing_accounts WHERE token_hash = $1")
                    .bind(sha256_hex(token.as_bytes())),
                "read referencing account",
            )
            .await?;
        Ok(row.and_then(|(id, role, name)| {
            ReferencingRole::parse(&role).map(|role| ReferencingAccount { id, role, name })
        }))
    }

    /// CA-2: a publisher submits an application; the service gets its client id.
    pub async fn submit_service(
        &self,
        publisher: &ReferencingAccount,
        application: Application,
        criteria: &[Criterion],
    ) -> Result<Service, StoreError> {
        if publisher.role != ReferencingRole::Publisher {
            return Err(StoreError::Invalid(
                "only a publisher submits an application".into(),
            ));
        }
        let record =
            Referencing::submit(application.clone(), criteria).map_err(|e| StoreError::Invalid(e.0))?;
        let client_id = format!("app-{}", hex::encode(random_bytes::<8>()?));
        let now = self.now().as_micros();
        let text = serde_json::to_string(&record).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let step = serde_json::to_string(&Step::Submitted { application })
            .map_err(|e| StoreError::Integrity(e.to_string()))?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO services (client_id, publisher_id, state, record, version, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, 1, $5, $5)",
            )
            .binds((&client_id, &publisher.id, record.state.tag(), &text, now)),
            "create service",
        )
        .await?;
        tx.execute(
            Query::new(
                "INSERT INTO service_steps (client_id, seq, at, account_id, role, step) VALUES ($1, 1, $2, \
                 $3, $4, $5)",
            )
            .binds((&client_id, now, &publisher.id, publisher.role.tag(), &step)),
            "record submission",
        )
        .await?;
        tx.commit().await?;
        Ok(Service {
            client_id,
            publisher_id: publisher.id.clone(),
            record,
            version: 1,
            created_at: carnet_domain::Timestamp::from_micros(now),
        })
    }

    pub async fn service(&self, client_id: &str) -> Result<Option<Service>, StoreError> {
        let row = self
            .db
            .fetch_optional_as(
                Query::new(
                    "SELECT client_id, publisher_id, record, version, created_at FROM services WHERE \
                     client_id = $1",
                )
                .bind(client_id),
                "read service",
            )
            .await?;
        row.map(service_from).transpose()
    }

    /// Services of a publisher (`Some`) or all of them (`None`, the commission's list), newest first.
    pub async fn services(&self, publisher: Option<&str>) -> Result<Vec<Service>, StoreError> {
        let rows: Vec<ServiceRow> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT client_id, publisher_id, record, version, created_at FROM services WHERE ($1 = \
                     '' OR publisher_id = $1) ORDER BY created_at DESC, client_id",
                )
                .bind(publisher.unwrap_or("")),
                "list services",
            )
            .await?;
        rows.into_iter().map(service_from).collect()
    }

    /// CA-1: the services listed now (approved, within their convention's dates).
    pub async fn listed_services(&self) -> Result<Vec<Service>, StoreError> {
        let now = self.now().as_micros();
        let rows: Vec<ServiceRow> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT client_id, publisher_id, record, version, created_at FROM services WHERE state = \
                     'approved' AND listed_from <= $1 AND listed_until > $1 ORDER BY client_id",
                )
                .bind(now),
                "list catalogue",
            )
            .await?;
        let now = self.now();
        Ok(rows
            .into_iter()
            .map(service_from)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| s.record.listed(now))
            .collect())
    }

    /// Every step of a service's referencing, in order.
    pub async fn service_steps(&self, client_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows: Vec<(i64, i64, String, String, String)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT seq, at, account_id, role, step FROM service_steps WHERE client_id = $1 ORDER BY \
                     seq",
                )
                .bind(client_id),
                "read service steps",
            )
            .await?;
        rows.into_iter()
            .map(|(seq, at, account_id, role, step)| {
                Ok(StepRecord {
                    seq,
                    at: carnet_domain::Timestamp::from_micros(at),
                    account_id,
                    role: ReferencingRole::parse(&role)
                        .ok_or_else(|| StoreError::Integrity(format!("role {role}")))?,
                    step: serde_json::from_str(&step).map_err(|e| StoreError::Integrity(e.to_string()))?,
                })
            })
            .collect()
    }

    /// CA-2, CA-4: applies one workflow step by `account` (a publisher only on its own
    /// services), recorded with compare-and-set on the version. A withdrawal revokes every
    /// token of the service in the same transaction.
    pub async fn apply_service_step(
        &self,
        account: &ReferencingAccount,
        client_id: &str,
        step: &Step,
        criteria: &[Criterion],
    ) -> Result<Service, StoreError> {
        let service = self.service(client_id).await?.ok_or(StoreError::NotFound)?;
        if account.role == ReferencingRole::Publisher && service.publisher_id != account.id {
            return Err(StoreError::NotFound);
        }
        let record = service
            .record
            .apply(account.role, step, criteria)
            .map_err(|e| StoreError::Invalid(e.0))?;
        let now = self.now().as_micros();
        let text = serde_json::to_string(&record).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let step_text = serde_json::to_string(step).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let (from, until) = match &record.convention {
            Some(c) if record.state == carnet_domain::catalogue::State::Approved => {
                (Some(c.starts.as_micros()), Some(c.ends.as_micros()))
            }
            _ => (None, None),
        };
        let mut tx = self.db.begin().await?;
        let changed = tx
            .execute(
                Query::new(
                    "UPDATE services SET state = $1, record = $2, listed_from = $3, listed_until = $4, \
                     version = version + 1, updated_at = $5 WHERE client_id = $6 AND version = $7",
                )
                .binds((
                    record.state.tag(),
                    &text,
                    from,
                    until,
                    now,
                    client_id,
                    service.version,
                )),
                "update service",
            )
            .await?;
        if changed != 1 {
            return Err(StoreError::Conflict);
        }
        tx.execute(
            Query::new(
                "INSERT INTO service_steps (client_id, seq, at, account_id, role, step) SELECT $1, \
                 COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM service_steps WHERE client_id = $1",
            )
            .binds((client_id, now, &account.id, account.role.tag(), &step_text)),
            "record service step",
        )
        .await?;
        if matches!(step, Step::Withdrawn { .. }) {
            tx.execute(
                Query::new(
                    "UPDATE oauth_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
                )
                .binds((now, client_id)),
                "revoke withdrawn service's tokens",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Service {
            record,
            version: service.version + 1,
            ..service
        })
    }

    // -----------------------------------------------------------------------------------------
    // Connecting an app (CA-3)

    /// The holder connects a listed service: its grant in the directory (categories ticked,
    /// within the convention, until the convention ends). Returns the categories granted.
    pub(crate) async fn connect_app(
        &self,
        holder: HolderId,
        service: &Service,
        ticked: &[Category],
    ) -> Result<Vec<Category>, StoreError> {
        let now = self.now();
        let convention = match &service.record.convention {
            Some(c) if service.record.listed(now) => c,
            _ => return Err(StoreError::NotFound),
        };
        let categories: Vec<Category> = convention
            .categories
            .iter()
            .copied()
            .filter(|c| ticked.contains(c))
            .collect();
        if categories.is_empty() {
            return Err(StoreError::Invalid(
                "tick at least one category of data the service may reach".into(),
            ));
        }
        let grantee = Grantee::App { id: service.app() };
        let until = convention.ends;
        self.update_access_policy(holder, |p| {
            p.grants.retain(|g| g.grantee != grantee);
            p.grants.push(Grant {
                grantee: grantee.clone(),
                categories: Some(categories.clone()),
                until: Some(until),
                express: false,
                basis: Default::default(),
            });
        })
        .await?;
        Ok(categories)
    }

    /// The holder disconnects an app (CA-3): its grant leaves the directory and every token it
    /// holds for this space is revoked, in that order (the gate refuses from the first step).
    pub(crate) async fn disconnect_app(&self, holder: HolderId, client_id: &str) -> Result<(), StoreError> {
        let grantee = Grantee::App {
            id: AppId(client_id.to_string()),
        };
        self.update_access_policy(holder, |p| p.grants.retain(|g| g.grantee != grantee))
            .await?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE oauth_tokens SET revoked_at = $1 WHERE client_id = $2 AND holder_id = $3 AND \
                 revoked_at IS NULL",
            )
            .binds((self.now().as_micros(), client_id, holder.as_uuid())),
            "revoke app tokens",
        )
        .await?;
        tx.commit().await
    }

    // -----------------------------------------------------------------------------------------
    // Codes and tokens

    /// Issues a single-use authorisation code (shown once).
    pub async fn issue_code(&self, g: &CodeGrant) -> Result<String, StoreError> {
        let code = random_token()?;
        let family = hex::encode(random_bytes::<16>()?);
        let expires = self.now().plus_seconds(CODE_SECONDS).as_micros();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO oauth_codes (code_hash, client_id, holder_id, subject_id, redirect_uri, \
                 challenge, scope, family, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .binds((
                sha256_hex(code.as_bytes()),
                &g.client_id,
                g.holder.as_uuid(),
                g.subject.as_uuid(),
                &g.redirect_uri,
                &g.challenge,
                &g.scope,
                &family,
                expires,
            )),
            "issue code",
        )
        .await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Consumes a code (compare-and-set on `used_at`): its grant and token family. A second
    /// use revokes every token issued from the first (RFC 6749 4.1.2).
    pub async fn redeem_code(&self, code: &str) -> Result<Result<(CodeGrant, String), Redeem>, StoreError> {
        let hash = sha256_hex(code.as_bytes());
        let now = self.now().as_micros();
        type CodeRow = (
            String,
            Uuid,
            Uuid,
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
        );
        let row: Option<CodeRow> = self
            .db
            .fetch_optional_as(
                Query::new(
                    "SELECT client_id, holder_id, subject_id, redirect_uri, challenge, scope, family, \
                     expires_at, used_at FROM oauth_codes WHERE code_hash = $1",
                )
                .bind(&hash),
                "read code",
            )
            .await?;
        let Some((client_id, holder, subject, redirect_uri, challenge, scope, family, expires, used)) = row
        else {
            return Ok(Err(Redeem::Invalid));
        };
        let mut tx = self.db.begin().await?;
        let claimed = if used.is_some() {
            0
        } else {
            tx.execute(
                Query::new("UPDATE oauth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
                    .binds((now, &hash)),
                "use code",
            )
            .await?
        };
        if claimed != 1 {
            tx.execute(
                Query::new(
                    "UPDATE oauth_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
                )
                .binds((now, &family)),
                "revoke replayed code's tokens",
            )
            .await?;
            tx.commit().await?;
            return Ok(Err(Redeem::Replayed));
        }
        tx.commit().await?;
        if expires <= now {
            return Ok(Err(Redeem::Invalid));
        }
        Ok(Ok((
            CodeGrant {
                client_id,
                holder: HolderId::from_uuid(holder),
                subject: HolderId::from_uuid(subject),
                redirect_uri,
                challenge,
                scope,
            },
            family,
        )))
    }

    /// Issues an access token (and a refresh token if `refresh`) in a family.
    pub async fn issue_app_tokens(
        &self,
        client_id: &str,
        holder: HolderId,
        subject: HolderId,
        scope: &str,
        family: &str,
        refresh: bool,
    ) -> Result<IssuedTokens, StoreError> {
        let now = self.now();
        let access = random_token()?;
        let refresh_token = if refresh { Some(random_token()?) } else { None };
        let mut tx = self.db.begin().await?;
        let mut rows = vec![(&access, TokenKind::Access, ACCESS_TOKEN_SECONDS)];
        if let Some(r) = &refresh_token {
            rows.push((r, TokenKind::Refresh, REFRESH_TOKEN_SECONDS));
        }
        for (token, kind, seconds) in rows {
            tx.execute(
                Query::new(
                    "INSERT INTO oauth_tokens (token_hash, kind, client_id, holder_id, subject_id, scope, \
                     family, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .binds((
                    sha256_hex(token.as_bytes()),
                    kind.tag(),
                    client_id,
                    holder.as_uuid(),
                    subject.as_uuid(),
                    scope,
                    family,
                    now.as_micros(),
                    now.plus_seconds(seconds).as_micros(),
                )),
                "issue app token",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(IssuedTokens {
            holder,
            access_token: access,
            refresh_token,
            expires_in: ACCESS_TOKEN_SECONDS,
            scope: scope.to_string(),
        })
    }

    /// A token (access or refresh) that is live now: not expired, revoked or rotated, its
    /// service listed, its space open.
    pub async fn live_app_token(&self, token: &str) -> Result<Option<AppToken>, StoreError> {
        let now = self.now().as_micros();
        let hash = sha256_hex(token.as_bytes());
        let row = match self
            .db
            .fetch_optional(Query::new(LIVE_TOKEN).bind(&hash).bind(now), "read app token")
            .await?
        {
            Some(mut r) => Some((
                r.take::<String>(0)?,
                r.take::<String>(1)?,
                r.take::<Uuid>(2)?,
                r.take::<Uuid>(3)?,
                r.take::<String>(4)?,
                r.take::<i64>(5)?,
                r.take::<i64>(6)?,
            )),
            None => None,
        };
        Ok(row.map(
            |(kind, client_id, holder, subject, scope, issued_at, expires_at)| AppToken {
                kind: if kind == "refresh" {
                    TokenKind::Refresh
                } else {
                    TokenKind::Access
                },
                client_id,
                holder: HolderId::from_uuid(holder),
                subject: HolderId::from_uuid(subject),
                scope,
                issued_at,
                expires_at,
            },
        ))
    }

    /// Rotates a refresh token of `client_id`: the old one is used up, a new pair is issued
    /// in its family. A refresh token used twice revokes its whole family (RFC 9700 4.14.2);
    /// one presented by another client is refused and left alone.
    pub async fn rotate_refresh_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Result<IssuedTokens, Redeem>, StoreError> {
        let hash = sha256_hex(token.as_bytes());
        let now = self.now().as_micros();
        let row: Option<(String, String, Option<i64>, String)> = self
            .db
            .fetch_optional_as(
                Query::new("SELECT client_id, family, used_at, kind FROM oauth_tokens WHERE token_hash = $1")
                    .bind(&hash),
                "read refresh token",
            )
            .await?;
        let Some((owner, family, used, kind)) = row else {
            return Ok(Err(Redeem::Invalid));
        };
        if kind != "refresh" || owner != client_id {
            return Ok(Err(Redeem::Invalid));
        }
        if used.is_some() {
            self.revoke_family(&family).await?;
            return Ok(Err(Redeem::Replayed));
        }
        let Some(live) = self.live_app_token(token).await? else {
            return Ok(Err(Redeem::Invalid));
        };
        let mut tx = self.db.begin().await?;
        let claimed = tx
            .execute(
                Query::new("UPDATE oauth_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
                    .binds((now, &hash)),
                "rotate refresh token",
            )
            .await?;
        tx.commit().await?;
        if claimed != 1 {
            self.revoke_family(&family).await?;
            return Ok(Err(Redeem::Replayed));
        }
        Ok(Ok(self
            .issue_app_tokens(client_id, live.holder, live.subject, &live.scope, &family, true)
            .await?))
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new("UPDATE oauth_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL")
                .binds((self.now().as_micros(), family)),
            "revoke token family",
        )
        .await?;
        tx.commit().await
    }

    /// RFC 7009: revokes a token of `client_id` (a refresh token takes its family with it);
    /// an unknown token or another client's is silently ignored, as the RFC says.
    pub async fn revoke_app_token(&self, token: &str, client_id: &str) -> Result<(), StoreError> {
        let row: Option<(String, String, String)> = self
            .db
            .fetch_optional_as(
                Query::new("SELECT client_id, family, kind FROM oauth_tokens WHERE token_hash = $1")
                    .bind(sha256_hex(token.as_bytes())),
                "read token to revoke",
            )
            .await?;
        match row {
            Some((owner, family, kind)) if owner == client_id => {
                if kind == "refresh" {
                    self.revoke_family(&family).await
                } else {
                    let mut tx = self.db.begin().await?;
                    tx.execute(
                        Query::new(
                            "UPDATE oauth_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS \
                             NULL",
                        )
                        .binds((self.now().as_micros(), sha256_hex(token.as_bytes()))),
                        "revoke token",
                    )
                    .await?;
                    tx.commit().await
                }
            }
            _ => Ok(()),
        }
    }

    /// The apps holding live tokens or grants for a space: client ids with live tokens.
    pub async fn apps_with_tokens(&self, holder: HolderId) -> Result<Vec<String>, StoreError> {
        let now = self.now().as_micros();
        self.db
            .fetch_all_as::<String>(
                Query::new(
                    "SELECT DISTINCT client_id FROM oauth_tokens WHERE holder_id = $1 AND revoked_at IS NULL \
                     AND used_at IS NULL AND expires_at > $2 ORDER BY client_id",
                )
                .binds((holder.as_uuid(), now)),
                "list app tokens",
            )
            .await
    }
}

impl Store {
    fn id_token_signer(
        keys: &crate::ServiceKeys,
    ) -> Result<aws_lc_rs::signature::Ed25519KeyPair, StoreError> {
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(keys.id_token.expose())
            .map_err(|e| StoreError::Integrity(format!("ID token key: {e}")))
    }

    /// The public key that signs ID tokens, as a JWK (OKP Ed25519, RFC 8037).
    pub async fn id_token_jwk(&self) -> Result<serde_json::Value, StoreError> {
        use aws_lc_rs::signature::KeyPair;
        use base64::Engine;
        let pair = Self::id_token_signer(self.service_keys().await?)?;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        Ok(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": sha256_hex(x.as_bytes())[..16].to_string(), "x": x,
        }))
    }

    /// Signs `claims` as a compact JWS (EdDSA): an OpenID Connect ID token.
    pub async fn sign_id_token(&self, claims: &serde_json::Value) -> Result<String, StoreError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwk = self.id_token_jwk().await?;
        let pair = Self::id_token_signer(self.service_keys().await?)?;
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": jwk["kid"]});
        let input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let sig = pair.sign(input.as_bytes());
        Ok(format!("{input}.{}", b64.encode(sig.as_ref())))
    }
}
