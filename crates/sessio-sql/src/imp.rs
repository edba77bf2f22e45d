//! The `Store` implementation shared by the three SQL stores.
//!
//! The SQL differs per database only in the statements of [`Sql`](crate::common::Sql)
//! and in a few hooks each store module defines (`begin`, `text`, `param`,
//! `purge_batch`), so the logic lives here once, as a macro over the concrete sqlx
//! types (sqlx's generic executor bounds would be longer than the code).

macro_rules! sql_store {
    ($Store:ident, $Db:ty, $name:literal) => {
        impl $Store {
            fn from_parts(
                pool: sqlx::Pool<$Db>,
                options: &$crate::SqlStoreOptions,
                dialect: $crate::common::Dialect,
            ) -> Self {
                Self {
                    inner: std::sync::Arc::new($crate::imp::Inner {
                        sql: $crate::common::Sql::new(dialect, &options.table),
                        table: options.table.clone(),
                        sweep_batch: options.sweep_batch,
                        call_timeout: options.call_timeout,
                        listener: std::sync::OnceLock::new(),
                        pool,
                    }),
                    sweeper: None,
                }
            }

            /// The connection pool, for your own queries or to close it.
            pub fn pool(&self) -> &sqlx::Pool<$Db> {
                &self.inner.pool
            }

            /// The sessions table (values live in `<table>_values`, the user index in
            /// `<table>_users`).
            pub fn table(&self) -> &$crate::TableName {
                &self.inner.table
            }

            /// Starts a background task that calls [`purge_expired`](Self::purge_expired)
            /// every `interval`, deleting at most `batch` sessions per statement.
            /// The task stops when the returned handle is dropped or shut down.
            /// Must be called within a Tokio runtime.
            pub fn spawn_sweeper(
                &self,
                interval: std::time::Duration,
                batch: u32,
            ) -> $crate::SweeperHandle {
                let store = Self {
                    inner: self.inner.clone(),
                    sweeper: None,
                };
                let batch = batch.max(1);
                $crate::SweeperHandle::spawn(interval, move || {
                    let store = store.clone();
                    async move {
                        match store.purge_expired_in(batch).await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(store = $name, removed = n, "swept expired sessions"),
                            Err(error) => tracing::warn!(store = $name, %error, "sweeping expired sessions failed"),
                        }
                    }
                })
            }

            /// Deletes every expired session now, in batches of the configured
            /// `sweep_batch` (each batch its own short statement), calls the expiry
            /// listener for each, and returns how many were deleted.
            pub async fn purge_expired(&self) -> Result<u64, sessio::store::StoreError> {
                self.purge_expired_in(self.inner.sweep_batch).await
            }

            async fn purge_expired_in(&self, batch: u32) -> Result<u64, sessio::store::StoreError> {
                let mut total = 0u64;
                loop {
                    let now = $crate::common::now_millis();
                    let keys = self.purge_batch(now, batch).await.map_err(|e| {
                        $crate::common::sql_error($name, sessio::store::StoreOp::PurgeExpired, e)
                    })?;
                    total += keys.len() as u64;
                    let done = keys.len() < batch as usize;
                    if let Some(listener) = self.inner.listener.get() {
                        for key in &keys {
                            listener(key);
                        }
                    }
                    if done {
                        return Ok(total);
                    }
                    // Let other work at the database between batches.
                    tokio::task::yield_now().await;
                }
            }

            /// `call`, failing with `Unavailable` once the configured call timeout
            /// has passed.
            fn bounded<'a, T: Send + 'a>(
                &self,
                op: sessio::store::StoreOp,
                call: impl std::future::Future<Output = Result<T, sessio::store::StoreError>> + Send + 'a,
            ) -> sessio::store::StoreFuture<'a, T> {
                sessio::store::StoreFuture::new($crate::common::with_deadline(
                    $name,
                    op,
                    self.inner.call_timeout,
                    call,
                ))
            }

            /// How many times a call is retried after a connection failure that
            /// happened before anything was applied: once per pooled connection,
            /// since each retry discards one dead connection.
            fn retry_budget(&self) -> u32 {
                self.inner.pool.options().get_max_connections().min(16)
            }

            /// Starts a transaction, retrying on connections the server dropped
            /// (`BEGIN` changes nothing, so retrying it is always safe).
            async fn begin_retrying(
                &self,
                op: sessio::store::StoreOp,
            ) -> Result<sqlx::Transaction<'static, $Db>, sessio::store::StoreError> {
                $crate::common::with_retry($name, self.retry_budget(), || async {
                    Self::begin(&self.inner.pool)
                        .await
                        .map_err(|e| $crate::common::sql_error($name, op, e))
                })
                .await
            }

            async fn load_inner(
                &self,
                key: &sessio::store::StoreKey,
            ) -> Result<Option<sessio::store::Record>, sessio::store::StoreError> {
                use sqlx::Row as _;
                use sessio::store::StoreOp::Load;
                let err = |e| $crate::common::sql_error($name, Load, e);
                let rows = sqlx::query(&self.inner.sql.load)
                    .bind(Self::param(key.as_str()))
                    .bind($crate::common::now_millis())
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(err)?;
                let Some(first) = rows.first() else {
                    return Ok(None);
                };
                let expires_at = match first.try_get::<Option<i64>, _>(0).map_err(err)? {
                    None => None,
                    Some(ms) => Some($crate::common::from_millis(ms).ok_or_else(|| {
                        sessio::store::StoreError::new($name, Load, sessio::store::StoreErrorKind::Corrupt)
                    })?),
                };
                let mut values = sessio::store::Values::with_capacity(rows.len() * 16);
                for row in &rows {
                    let Some(name) = Self::text(row, 1, "name", Load)? else {
                        continue; // a session without values
                    };
                    let data: Vec<u8> = row.try_get(2).map_err(err)?;
                    values.insert(&name, data);
                }
                Ok(Some(sessio::store::Record {
                    values: std::sync::Arc::new(values),
                    expires_at,
                }))
            }

            async fn commit_inner(
                &self,
                key: &sessio::store::StoreKey,
                patch: &sessio::store::Patch,
            ) -> Result<sessio::store::Committed, sessio::store::StoreError> {
                use sessio::store::{Change, Committed, StoreError, StoreErrorKind, StoreOp::Commit};
                let err = |e| $crate::common::sql_error($name, Commit, e);
                let sql = &self.inner.sql;
                let id = Self::param(key.as_str());
                let deadline = patch.expires_at.map($crate::common::to_millis);
                let mut tx = self.begin_retrying(Commit).await?;
                // Extends a live session and locks its row (PostgreSQL, MySQL) or the
                // database (SQLite) until commit: every commit on one session runs
                // serially from here, which makes increments exact and lets two
                // patches on different keys both land.
                let live = sqlx::query(&sql.touch)
                    .bind(deadline)
                    .bind(id)
                    .bind($crate::common::now_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?
                    .rows_affected()
                    > 0;
                if !live {
                    if !patch.create {
                        tx.rollback().await.map_err(err)?;
                        return Ok(Committed::Missing);
                    }
                    // An expired row under this key must not leak its values into
                    // the new session: delete it (values cascade), then create.
                    sqlx::query(&sql.delete_session).bind(id).execute(&mut *tx).await.map_err(err)?;
                    sqlx::query(&sql.insert_session)
                        .bind(id)
                        .bind(deadline)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                } else if patch.clear {
                    sqlx::query(&sql.clear_values).bind(id).execute(&mut *tx).await.map_err(err)?;
                }
                let mut counters = Vec::new();
                for change in &patch.changes {
                    match change {
                        Change::Set(name, value) => {
                            sqlx::query(&sql.upsert_value)
                                .bind(id)
                                .bind(Self::param(name))
                                .bind(&value[..])
                                .execute(&mut *tx)
                                .await
                                .map_err(err)?;
                        }
                        Change::Remove(name) => {
                            sqlx::query(&sql.delete_value)
                                .bind(id)
                                .bind(Self::param(name))
                                .execute(&mut *tx)
                                .await
                                .map_err(err)?;
                        }
                        Change::Increment(name, by) => {
                            // At most one row (primary key).
                            let current: Option<Vec<u8>> = sqlx::query_scalar(&sql.select_value)
                                .bind(id)
                                .bind(Self::param(name))
                                .fetch_all(&mut *tx)
                                .await
                                .map_err(err)?
                                .pop();
                            let current = match current {
                                None => Some(0),
                                Some(raw) => sessio::store::parse_counter(&raw),
                            };
                            let next = match current {
                                None => Err(StoreErrorKind::NotAnInteger { key: name.clone() }),
                                Some(n) => n
                                    .checked_add(*by)
                                    .ok_or_else(|| StoreErrorKind::Overflow { key: name.clone() }),
                            };
                            let next = match next {
                                Ok(next) => next,
                                Err(kind) => {
                                    // Nothing of the patch may land.
                                    tx.rollback().await.map_err(err)?;
                                    return Err(StoreError::new($name, Commit, kind));
                                }
                            };
                            sqlx::query(&sql.upsert_value)
                                .bind(id)
                                .bind(Self::param(name))
                                .bind(next.to_string().into_bytes())
                                .execute(&mut *tx)
                                .await
                                .map_err(err)?;
                            counters.push(next);
                        }
                    }
                }
                tx.commit().await.map_err(err)?;
                Ok(Committed::Applied { counters })
            }

            async fn destroy_all_inner(&self) -> Result<u64, sessio::store::StoreError> {
                let err = |e| $crate::common::sql_error($name, sessio::store::StoreOp::DestroyAll, e);
                let mut tx = self.begin_retrying(sessio::store::StoreOp::DestroyAll).await?;
                let live = sqlx::query(&self.inner.sql.destroy_live)
                    .bind($crate::common::now_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?
                    .rows_affected();
                sqlx::query(&self.inner.sql.destroy_rest).execute(&mut *tx).await.map_err(err)?;
                tx.commit().await.map_err(err)?;
                Ok(live)
            }

            async fn index_user_inner(
                &self,
                user: &str,
                key: &sessio::store::StoreKey,
            ) -> Result<(), sessio::store::StoreError> {
                let done = sqlx::query(&self.inner.sql.index_user)
                    .bind($crate::common::user_hash(user.as_bytes()))
                    .bind(Self::param(key.as_str()))
                    .bind($crate::common::now_millis())
                    .execute(&self.inner.pool)
                    .await;
                match done {
                    Ok(_) => Ok(()),
                    // The session was deleted between the `SELECT` and the foreign
                    // key check: it has nothing left to log out.
                    Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => Ok(()),
                    Err(e) => Err($crate::common::sql_error(
                        $name,
                        sessio::store::StoreOp::IndexUser,
                        e,
                    )),
                }
            }

            async fn destroy_user_inner(
                &self,
                user: &str,
            ) -> Result<Vec<sessio::store::StoreKey>, sessio::store::StoreError> {
                let hash = $crate::common::user_hash(user.as_bytes());
                let now = $crate::common::now_millis();
                // Deleting the session rows fires the PostgreSQL change trigger for
                // each (as `destroy` does) and cascades to their values and index rows.
                let deleted = self.delete_user_sessions(&hash).await?;
                Ok(deleted
                    .into_iter()
                    .filter(|(_, expires_at)| expires_at.is_none_or(|ms| ms > now))
                    .map(|(key, _)| key)
                    .collect())
            }

            /// Fills a user index created just now from the users that sessions
            /// already hold (written by an earlier version, which kept no index), so
            /// that "log out everywhere" reaches them too. Returns how many it indexed.
            async fn backfill_users(
                &self,
                conn: &mut <$Db as sqlx::Database>::Connection,
            ) -> Result<u64, sessio::store::StoreError> {
                use sessio::store::StoreOp::Connect;
                const PAGE: usize = 500;
                let err = |e| $crate::common::sql_error($name, Connect, e);
                let insert_all = $crate::common::Sql::insert_users(
                    self.inner.sql.dialect,
                    &self.inner.table,
                    PAGE,
                );
                let mut after = String::new();
                let mut total = 0u64;
                loop {
                    let rows = sqlx::query(&self.inner.sql.backfill_page)
                        .bind(Self::param($crate::common::USER_VALUE))
                        .bind(Self::param(&after))
                        .bind($crate::common::now_millis())
                        .bind(i64::try_from(PAGE).unwrap_or(i64::MAX))
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(err)?;
                    let mut page = Vec::with_capacity(rows.len());
                    for row in &rows {
                        use sqlx::Row as _;
                        let Some(id) = Self::text(row, 0, "session_id", Connect)? else {
                            continue;
                        };
                        let user: Vec<u8> = row.try_get(1).map_err(err)?;
                        page.push((id, $crate::common::user_hash(&user)));
                    }
                    if let Some((last, _)) = page.last() {
                        after = last.clone();
                        let partial;
                        let sql = if page.len() == PAGE {
                            &insert_all
                        } else {
                            partial = $crate::common::Sql::insert_users(
                                self.inner.sql.dialect,
                                &self.inner.table,
                                page.len(),
                            );
                            &partial
                        };
                        let mut insert = sqlx::query(sql);
                        for (id, hash) in &page {
                            insert = insert.bind(Self::param(id)).bind(&hash[..]);
                        }
                        insert.execute(&mut *conn).await.map_err(err)?;
                        total += page.len() as u64;
                    }
                    if rows.len() < PAGE {
                        return Ok(total);
                    }
                }
            }

            async fn keys_inner(
                &self,
                cursor: Option<&str>,
                limit: usize,
            ) -> Result<sessio::store::KeyPage, sessio::store::StoreError> {
                let op = sessio::store::StoreOp::Keys;
                let limit = limit.clamp(1, 10_000);
                let rows = sqlx::query(&self.inner.sql.keys)
                    .bind(Self::param(cursor.unwrap_or("")))
                    .bind($crate::common::now_millis())
                    .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
                    .fetch_all(&self.inner.pool)
                    .await
                    .map_err(|e| $crate::common::sql_error($name, op, e))?;
                let mut keys = Vec::with_capacity(rows.len().min(limit));
                for row in rows.iter().take(limit) {
                    if let Some(id) = Self::text(row, 0, "id", op)? {
                        keys.push(sessio::store::StoreKey::from_stored(id));
                    }
                }
                let next = if rows.len() > limit {
                    keys.last().map(|k| k.as_str().to_owned())
                } else {
                    None
                };
                Ok(sessio::store::KeyPage { keys, next })
            }
        }

        impl Clone for $Store {
            fn clone(&self) -> Self {
                Self {
                    inner: self.inner.clone(),
                    sweeper: self.sweeper.clone(),
                }
            }
        }

        impl std::fmt::Debug for $Store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Store))
                    .field("table", &self.inner.table)
                    .field("pool_size", &self.inner.pool.size())
                    .field("sweeper", &self.sweeper.is_some())
                    .finish_non_exhaustive()
            }
        }

        impl sessio::store::Store for $Store {
            fn name(&self) -> &'static str {
                $name
            }

            fn load<'a>(
                &'a self,
                key: &'a sessio::store::StoreKey,
            ) -> sessio::store::StoreFuture<'a, Option<sessio::store::Record>> {
                self.bounded(sessio::store::StoreOp::Load, $crate::common::with_retry(
                    $name,
                    self.retry_budget(),
                    move || self.load_inner(key),
                ))
            }

            fn commit<'a>(
                &'a self,
                key: &'a sessio::store::StoreKey,
                patch: &'a sessio::store::Patch,
            ) -> sessio::store::StoreFuture<'a, sessio::store::Committed> {
                self.bounded(sessio::store::StoreOp::Commit, self.commit_inner(key, patch))
            }

            fn destroy<'a>(
                &'a self,
                key: &'a sessio::store::StoreKey,
            ) -> sessio::store::StoreFuture<'a, bool> {
                // Retried on a dropped connection like the reads: if the server did
                // delete before the connection died, the retry reports `false`.
                self.bounded(sessio::store::StoreOp::Destroy, $crate::common::with_retry($name, self.retry_budget(), move || async move {
                    let done = sqlx::query(&self.inner.sql.destroy)
                        .bind(Self::param(key.as_str()))
                        .bind($crate::common::now_millis())
                        .execute(&self.inner.pool)
                        .await
                        .map_err(|e| {
                            $crate::common::sql_error($name, sessio::store::StoreOp::Destroy, e)
                        })?;
                    Ok(done.rows_affected() > 0)
                }))
            }

            fn destroy_all(&self) -> sessio::store::StoreFuture<'_, u64> {
                self.bounded(sessio::store::StoreOp::DestroyAll, self.destroy_all_inner())
            }

            fn count(&self) -> sessio::store::StoreFuture<'_, u64> {
                self.bounded(sessio::store::StoreOp::Count, $crate::common::with_retry($name, self.retry_budget(), move || async move {
                    let n: i64 = sqlx::query_scalar(&self.inner.sql.count)
                        .bind($crate::common::now_millis())
                        .fetch_one(&self.inner.pool)
                        .await
                        .map_err(|e| {
                            $crate::common::sql_error($name, sessio::store::StoreOp::Count, e)
                        })?;
                    Ok(u64::try_from(n).unwrap_or(0))
                }))
            }

            fn keys<'a>(
                &'a self,
                cursor: Option<&'a str>,
                limit: usize,
            ) -> sessio::store::StoreFuture<'a, sessio::store::KeyPage> {
                self.bounded(sessio::store::StoreOp::Keys, $crate::common::with_retry(
                    $name,
                    self.retry_budget(),
                    move || self.keys_inner(cursor, limit),
                ))
            }

            fn set_expiry_listener(&self, listener: sessio::store::ExpiryListener) -> bool {
                // The first registration wins, as in the memory store.
                let _ = self.inner.listener.set(listener);
                true
            }

            fn index_user<'a>(
                &'a self,
                user: &'a str,
                key: &'a sessio::store::StoreKey,
                _expires_at: Option<std::time::SystemTime>,
            ) -> sessio::store::StoreFuture<'a, ()> {
                // The index row lives exactly as long as its session row (foreign
                // key, ON DELETE CASCADE), so the deadline needs no copy here. An
                // upsert of the same row: safe to retry.
                self.bounded(sessio::store::StoreOp::IndexUser, $crate::common::with_retry(
                    $name,
                    self.retry_budget(),
                    move || self.index_user_inner(user, key),
                ))
            }

            fn destroy_user<'a>(
                &'a self,
                user: &'a str,
            ) -> sessio::store::StoreFuture<'a, Vec<sessio::store::StoreKey>> {
                // Retried on a dropped connection like `destroy`: sessions deleted
                // before the connection died are not reported again.
                self.bounded(sessio::store::StoreOp::DestroyUser, $crate::common::with_retry(
                    $name,
                    self.retry_budget(),
                    move || self.destroy_user_inner(user),
                ))
            }

            fn purge_expired(&self) -> sessio::store::StoreFuture<'_, Option<u64>> {
                sessio::store::StoreFuture::new(async move {
                    $Store::purge_expired(self).await.map(Some)
                })
            }
        }
    };
}

pub(crate) use sql_store;

/// The state behind every clone of a store.
pub(crate) struct Inner<DB: sqlx::Database> {
    pub(crate) pool: sqlx::Pool<DB>,
    pub(crate) sql: crate::common::Sql,
    pub(crate) table: crate::TableName,
    pub(crate) sweep_batch: u32,
    pub(crate) call_timeout: Option<std::time::Duration>,
    pub(crate) listener: std::sync::OnceLock<sessio::store::ExpiryListener>,
}
