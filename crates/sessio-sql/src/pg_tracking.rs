//! Change tracking for [`PostgresStore`]: a trigger sends `NOTIFY` when a session row
//! changes, and a `LISTEN`ing connection reports it, so that an in-process cache
//! (`sessio-tiered`) can drop what another server changed.

use std::{sync::Arc, time::Duration};

use sessio::store::{StoreError, StoreKey, StoreOp, Tracked};
use sqlx::postgres::PgListener;

use crate::{
    common::sql_error,
    postgres::{lock_schema, PostgresStore},
};

const NAME: &str = "postgres";

/// Keeps a [`PostgresStore::track_changes`] listener running; dropping it stops it.
#[derive(Debug)]
pub struct ChangeListener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PostgresStore {
    /// Reports, through `on_change`, every change that any process makes to a session
    /// of this store's table: written, destroyed or swept.
    ///
    /// The first call installs an `AFTER INSERT OR UPDATE OR DELETE` row trigger on
    /// the sessions table that runs `pg_notify('<schema>.<table>', id)`; it stays
    /// installed, so every writer notifies from then on (a notification is delivered
    /// when its transaction commits; PostgreSQL serialises committing transactions
    /// that notify, a cost that only matters at thousands of commits per second).
    /// A dedicated connection `LISTEN`s. When it fails, `on_change` gets
    /// [`Tracked::Lost`]; when it listens again, [`Tracked::Resumed`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use sessio::store::Tracked;
    /// use sessio_sql::PostgresStore;
    ///
    /// let store = PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
    /// let listener = store.track_changes(|change| println!("{change:?}")).await?;
    /// # drop(listener); Ok(()) }
    /// ```
    pub async fn track_changes(
        &self,
        on_change: impl Fn(Tracked) + Send + Sync + 'static,
    ) -> Result<ChangeListener, StoreError> {
        let err = |e| sql_error(NAME, StoreOp::Connect, e);
        let t = self.table().as_str();
        let mut tx = crate::common::begin_detached(self.pool(), None)
            .await
            .map_err(err)?;
        lock_schema(&mut tx, t).await.map_err(err)?;
        sqlx::query(&format!(
            "CREATE OR REPLACE FUNCTION {t}_notify() RETURNS trigger LANGUAGE plpgsql AS $f$ \
             BEGIN \
               IF TG_OP = 'DELETE' THEN \
                 PERFORM pg_notify(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, OLD.id); \
               ELSE \
                 PERFORM pg_notify(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, NEW.id); \
               END IF; \
               RETURN NULL; \
             END $f$"
        ))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let installed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger \
               WHERE tgname = $1 AND tgrelid = to_regclass($2))",
        )
        .bind(format!("{t}_notify"))
        .bind(t)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        if !installed {
            sqlx::query(&format!(
                "CREATE TRIGGER {t}_notify AFTER INSERT OR UPDATE OR DELETE ON {t} \
                 FOR EACH ROW EXECUTE FUNCTION {t}_notify()"
            ))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;

        let channel = format!("{schema}.{t}");
        let mut listener = PgListener::connect_with(self.pool()).await.map_err(err)?;
        listener.listen(&channel).await.map_err(err)?;
        let on_change: Arc<dyn Fn(Tracked) + Send + Sync> = Arc::new(on_change);
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        on_change(Tracked::Changed(StoreKey::from_stored(
                            notification.payload(),
                        )));
                        continue;
                    }
                    Ok(None) => tracing::warn!("sessio-sql: LISTEN connection lost"),
                    Err(error) => tracing::warn!(%error, "sessio-sql: LISTEN failed"),
                }
                on_change(Tracked::Lost);
                // Any statement on the listener reconnects it and listens again.
                let mut delay = Duration::from_millis(50);
                while let Err(error) = sqlx::query("SELECT 1").execute(&mut listener).await {
                    tracing::debug!(%error, "sessio-sql: LISTEN reconnect failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                on_change(Tracked::Resumed);
            }
        });
        Ok(ChangeListener { task })
    }
}
