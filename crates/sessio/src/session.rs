//! [`Session`]: the per-request handle.

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::HeaderValue;
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    cookies,
    error::Error,
    error::StoreOp,
    id::{SessionId, StoreKey},
    reserved::{self, check_user_key, flash_key, immutable_key, is_reserved},
    secure::sealed::{to_millis, Sealed},
    sessions::{DestroyReason, Sessions},
    store::{apply_changes, parse_counter, unsupported, Change, Committed, Patch, Record, Values},
};

/// The session of one request.
///
/// Cheap to clone; every clone is the same session. Reads and writes work on the
/// request's own view (loaded once) and are synchronous; writes are recorded as a
/// patch that is applied to the store atomically when the request ends (the adapters
/// do it) or on [`save`](Self::save). Only the keys a request changed are written, so
/// concurrent requests that write different keys both keep their writes.
/// [`increment`](Self::increment) goes to the store at once and is exact under
/// concurrency.
///
/// A session is created in the store on its first write; a request that only reads
/// creates nothing and gets no cookie.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sessio::Error> {
/// # let session = sessio::Sessions::builder().build()?.start(&http::HeaderMap::new()).await?;
/// session.set("name", "iris")?;
/// assert_eq!(session.get::<String>("name")?.as_deref(), Some("iris"));
/// assert!(session.get::<i64>("name").is_err()); // wrong type: an error, not a panic
/// assert_eq!(session.get_or("missing", 7)?, 7);
/// assert_eq!(session.increment("visits", 1).await?, 1);
///
/// session.set_immutable("role", "admin")?;
/// assert!(session.set("role", "user").is_err());
///
/// session.set_flash("notice", "saved")?;
/// assert_eq!(session.get_flash::<String>("notice")?.as_deref(), Some("saved"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    sessions: Sessions,
    secure: bool,
    state: Mutex<State>,
}

struct State {
    id: SessionId,
    /// The id's store key, derived (a keyed hash) only when first needed: a fresh
    /// session that is never written, or a sealed cookie session, never derives it.
    key: Option<StoreKey>,
    /// No stored session existed when the request started (or it was destroyed).
    is_new: bool,
    /// The store holds a record under `key`: commits must not create.
    stored: bool,
    /// This request's view: loaded values plus local changes.
    values: Arc<Values>,
    /// The deadline as stored; the browser's cookie carries the same one.
    deadline: Option<SystemTime>,
    /// Changes not yet committed.
    changes: Vec<Change>,
    /// Remove every stored key before `changes`.
    clear: bool,
    /// Write every value (the key is new after `regenerate`).
    write_all: bool,
    /// `update_expiration` was called: recompute and resend the deadline.
    expiry_changed: bool,
    /// Flash keys read in this request, removed at commit.
    consumed_flashes: Vec<String>,
    /// Old keys to remove at commit (destroy, regenerate).
    retired: Vec<(StoreKey, DestroyReason)>,
    /// What the response must do with the cookie.
    cookie: CookieAction,
    /// Numbered chunk cookies the browser holds (client-side sessions).
    chunks: usize,
    /// Whether any key is immutable: spares `set` a marker lookup in the common case.
    has_immutables: bool,
    /// The per-session idle timeout (`update_expiration`), parsed once: the deadline
    /// is computed on every commit.
    timeout: Option<Duration>,
    /// `set_user` was called: the next commit indexes the session under its user.
    user_changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieAction {
    None,
    Set,
    Remove,
}

/// How finishing a request's session goes: done already, or a store write to await.
pub enum Finish {
    /// Nothing had to be written: the `Set-Cookie` header values (or the error).
    Ready(Result<Vec<HeaderValue>, Error>),
    /// The store is being written; the future yields the header values.
    Pending(Pin<Box<dyn Future<Output = Result<Vec<HeaderValue>, Error>> + Send + 'static>>),
}

impl fmt::Debug for Finish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finish::Ready(result) => f.debug_tuple("Ready").field(result).finish(),
            Finish::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// What one commit sends to the store, taken out of the state under its lock.
struct Plan {
    retired: Vec<(StoreKey, DestroyReason)>,
    write: Option<(StoreKey, Patch)>,
    /// The user index needs this write (user set, session created or deadline moved).
    reindex: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Session")
            .field("id", &state.id)
            .field("is_new", &state.is_new)
            .field(
                "len",
                &state.values.keys().filter(|k| !is_reserved(k)).count(),
            )
            .field("pending_changes", &state.changes.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn fresh(sessions: Sessions, secure: bool, chunks: usize) -> Self {
        let id = sessions.config.ids.generate();
        let mut state = State::new(id, None, true, false, Record::default());
        state.chunks = chunks;
        Self::with_state(sessions, secure, state)
    }

    /// A session the store (or a sealed cookie) had, under `key` (its id's store key,
    /// when the caller already derived it to load it: deriving is a keyed hash).
    /// `rotated`: its cookie was opened with a previous key, so the response re-issues
    /// it under the current one.
    pub(crate) fn loaded(
        sessions: Sessions,
        secure: bool,
        (id, key): (SessionId, Option<StoreKey>),
        record: Record,
        rotated: bool,
        chunks: usize,
    ) -> Self {
        let mut state = State::new(id, key, false, true, record);
        state.chunks = chunks;
        if rotated {
            state.cookie = CookieAction::Set;
        }
        Self::with_state(sessions, secure, state)
    }

    fn is_client_side(&self) -> bool {
        self.inner.sessions.config.client.is_some()
    }

    fn with_state(sessions: Sessions, secure: bool, state: State) -> Self {
        Session {
            inner: Arc::new(Inner {
                sessions,
                secure,
                state: Mutex::new(state),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed in small steps that cannot panic half-way.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn codec(&self) -> crate::Codec {
        self.inner.sessions.config.codec
    }

    /// The session id (the cookie's value). Changes after [`regenerate`](Self::regenerate)
    /// and [`destroy`](Self::destroy).
    pub fn id(&self) -> SessionId {
        self.lock().id.clone()
    }

    /// Whether the session did not exist before this request.
    pub fn is_new(&self) -> bool {
        self.lock().is_new
    }

    /// The value under `key`, decoded as `T`; `Ok(None)` if absent. A stored value of
    /// another type (or garbage) is [`Error::Decode`].
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        check_user_key(key)?;
        self.decode_at(key, key)
    }

    fn decode_at<T: DeserializeOwned>(&self, stored: &str, key: &str) -> Result<Option<T>, Error> {
        let state = self.lock();
        state
            .values
            .get(stored)
            .map(|raw| self.codec().decode(raw))
            .transpose()
            .map_err(|source| Error::Decode {
                key: key.to_owned(),
                source,
            })
    }

    /// The value under `key`, or `default` when absent (Iris's `GetIntDefault` & co.).
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Sets `key` to `value`. Fails for keys stored with
    /// [`set_immutable`](Self::set_immutable).
    pub fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        check_user_key(key)?;
        let encoded = self.encode(key, value)?;
        let mut state = self.lock();
        if state.is_immutable(key) {
            return Err(Error::Immutable { key: key.into() });
        }
        state.put(key.to_owned(), encoded);
        Ok(())
    }

    /// Sets `key` to `value` and marks it immutable: plain [`set`](Self::set) then
    /// refuses to change it. `set_immutable` may replace it, and
    /// [`delete`](Self::delete) and [`clear`](Self::clear) remove it.
    pub fn set_immutable<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        check_user_key(key)?;
        let encoded = self.encode(key, value)?;
        let mut state = self.lock();
        state.put(key.to_owned(), encoded);
        state.put(immutable_key(key), Bytes::from_static(b"true"));
        state.has_immutables = true;
        Ok(())
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes, Error> {
        self.codec().encode(value).map_err(|source| Error::Encode {
            key: key.to_owned(),
            source,
        })
    }

    /// Adds `by` (may be negative) to the integer under `key` (absent counts as 0) in
    /// the store, atomically, and returns the stored result. Pending changes are
    /// committed in the same step.
    pub async fn increment(&self, key: &str, by: i64) -> Result<i64, Error> {
        check_user_key(key)?;
        if self.lock().is_immutable(key) {
            return Err(Error::Immutable { key: key.into() });
        }
        let counters = self
            .commit(Some(Change::Increment(key.to_owned(), by)))
            .await?;
        let value = counters.last().copied().unwrap_or_default();
        let mut state = self.lock();
        Arc::make_mut(&mut state.values).insert(key, value.to_string());
        Ok(value)
    }

    /// Subtracts `by` atomically; see [`increment`](Self::increment).
    pub async fn decrement(&self, key: &str, by: i64) -> Result<i64, Error> {
        self.increment(key, by.checked_neg().unwrap_or(i64::MAX))
            .await
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        check_user_key(key)?;
        let mut state = self.lock();
        let existed = state.values.contains_key(key);
        if existed {
            state.remove(key.to_owned());
            let marker = immutable_key(key);
            if state.values.contains_key(&marker) {
                state.remove(marker);
            }
        }
        Ok(existed)
    }

    /// Removes every value and flash message (the session itself lives on).
    pub fn clear(&self) {
        let mut state = self.lock();
        let keep: Vec<(String, Bytes)> = [reserved::CREATED, reserved::TIMEOUT]
            .into_iter()
            .filter_map(|k| {
                state
                    .values
                    .get(k)
                    .map(|v| (k.to_owned(), Bytes::copy_from_slice(v)))
            })
            .collect();
        state.changes.clear();
        state.clear = true;
        state.consumed_flashes.clear();
        Arc::make_mut(&mut state.values).clear();
        for (k, v) in keep {
            state.put(k, v);
        }
    }

    /// Every value, decoded to JSON (flash messages excluded).
    pub fn get_all(&self) -> Result<BTreeMap<String, serde_json::Value>, Error> {
        let mut all = BTreeMap::new();
        self.visit(|k, v| {
            all.insert(k.to_owned(), v);
        })?;
        Ok(all)
    }

    /// Calls `visit` with every key and its value decoded to JSON (Iris's `VisitAll`).
    pub fn visit(&self, mut visit: impl FnMut(&str, serde_json::Value)) -> Result<(), Error> {
        let values = self.lock().values.clone();
        for (k, raw) in values.iter().filter(|(k, _)| !is_reserved(k)) {
            let v = self
                .codec()
                .decode_json(raw)
                .map_err(|source| Error::Decode {
                    key: k.to_owned(),
                    source,
                })?;
            visit(k, v);
        }
        Ok(())
    }

    /// The number of values (flash messages excluded).
    pub fn len(&self) -> usize {
        self.lock()
            .values
            .keys()
            .filter(|k| !is_reserved(k))
            .count()
    }

    /// Whether the session holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets a flash message: it lives until a request reads it with
    /// [`get_flash`](Self::get_flash).
    pub fn set_flash<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        check_user_key(key)?;
        let encoded = self.encode(key, value)?;
        let stored = flash_key(key);
        let mut state = self.lock();
        state.consumed_flashes.retain(|k| *k != stored);
        state.put(stored, encoded);
        Ok(())
    }

    /// Whether any flash message is pending.
    pub fn has_flash(&self) -> bool {
        self.lock()
            .values
            .keys()
            .any(|k| k.starts_with(reserved::FLASH))
    }

    /// Reads a flash message and consumes it: it is removed when the request ends, so
    /// later requests no longer see it.
    pub fn get_flash<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        check_user_key(key)?;
        let stored = flash_key(key);
        let value = self.decode_at(&stored, key)?;
        if value.is_some() {
            let mut state = self.lock();
            if !state.consumed_flashes.contains(&stored) {
                state.consumed_flashes.push(stored);
            }
        }
        Ok(value)
    }

    /// Reads a flash message without consuming it.
    pub fn peek_flash<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        check_user_key(key)?;
        self.decode_at(&flash_key(key), key)
    }

    /// Every flash message, decoded to JSON, all consumed.
    pub fn get_flashes(&self) -> Result<BTreeMap<String, serde_json::Value>, Error> {
        let mut state = self.lock();
        let mut all = BTreeMap::new();
        let values = Arc::clone(&state.values);
        for (stored, raw) in values
            .iter()
            .filter(|(k, _)| k.starts_with(reserved::FLASH))
        {
            let key = stored[reserved::FLASH.len()..].to_owned();
            let value = self
                .codec()
                .decode_json(raw)
                .map_err(|source| Error::Decode {
                    key: key.clone(),
                    source,
                })?;
            all.insert(key, value);
            if !state.consumed_flashes.iter().any(|c| c == stored) {
                state.consumed_flashes.push(stored.to_owned());
            }
        }
        Ok(all)
    }

    /// Removes a flash message now; returns whether it existed.
    pub fn delete_flash(&self, key: &str) -> Result<bool, Error> {
        check_user_key(key)?;
        let stored = flash_key(key);
        let mut state = self.lock();
        let existed = state.values.contains_key(&stored);
        if existed {
            state.remove(stored);
        }
        Ok(existed)
    }

    /// Removes every flash message now.
    pub fn clear_flashes(&self) {
        let mut state = self.lock();
        let keys: Vec<String> = state
            .values
            .keys()
            .filter(|k| k.starts_with(reserved::FLASH))
            .map(str::to_owned)
            .collect();
        for k in keys {
            state.remove(k);
        }
    }

    /// Ends the session: its server-side data is removed when the request ends and the
    /// response expires the cookie. Writes after `destroy` start a new session with a
    /// new id.
    pub fn destroy(&self) {
        let mut state = self.lock();
        if state.stored {
            let old = state.key(&self.inner.sessions);
            state.retired.push((old, DestroyReason::Destroyed));
        }
        let id = self.inner.sessions.config.ids.generate();
        let retired = std::mem::take(&mut state.retired);
        let chunks = state.chunks;
        *state = State::new(id, None, true, false, Record::default());
        state.retired = retired;
        state.chunks = chunks;
        state.cookie = CookieAction::Remove;
    }

    /// Gives the session a new id, keeping its data; the old id stops working. Call it
    /// whenever privileges change (login) against session fixation.
    pub fn regenerate(&self) {
        let mut state = self.lock();
        let new_id = self.inner.sessions.config.ids.generate();
        if state.stored {
            let old = state.key(&self.inner.sessions);
            state.retired.push((old, DestroyReason::Regenerated));
            state.stored = false;
            state.write_all = true;
            state.changes.clear();
            state.clear = false;
        }
        state.key = None;
        state.id = new_id;
    }

    /// Marks the session as belonging to `user` (say, at login), so that
    /// [`Sessions::destroy_user`] ends it along with every other session of that user
    /// ("log out everywhere", for example after a password change). The store indexes
    /// the session when it commits; a store without a user index fails that commit
    /// with [`StoreErrorKind::Unsupported`](crate::StoreErrorKind::Unsupported).
    ///
    /// Call it after [`regenerate`](Self::regenerate) or before: the index follows
    /// the session to its new id either way.
    pub fn set_user(&self, user: &str) -> Result<(), Error> {
        if user.is_empty() || user.contains('\0') {
            return Err(Error::Config(
                "a user id must be non-empty and hold no NUL".into(),
            ));
        }
        let mut state = self.lock();
        state.put(
            reserved::USER.to_owned(),
            Bytes::copy_from_slice(user.as_bytes()),
        );
        state.user_changed = true;
        Ok(())
    }

    /// The user set with [`set_user`](Self::set_user), if any.
    pub fn user(&self) -> Option<String> {
        let state = self.lock();
        let raw = state.values.get(reserved::USER)?;
        std::str::from_utf8(raw).ok().map(str::to_owned)
    }

    /// Gives this session its own idle timeout ("remember me"), from now on.
    pub fn update_expiration(&self, timeout: Duration) {
        let secs = timeout.as_secs().max(1);
        let mut state = self.lock();
        state.put(reserved::TIMEOUT.to_owned(), Bytes::from(secs.to_string()));
        state.timeout = Some(Duration::from_secs(secs));
        state.expiry_changed = true;
    }

    /// Commits pending changes to the store now (the adapters do it after the handler).
    pub async fn save(&self) -> Result<(), Error> {
        self.commit(None).await.map(drop)
    }

    /// Commits, then returns the `Set-Cookie` header values the response needs: none
    /// when the cookie the browser holds is still right.
    pub async fn finish(&self) -> Result<Vec<HeaderValue>, Error> {
        // Not through `finish_now`: awaited here, the write needs no box of its own.
        self.save().await?;
        self.response_cookies()
    }

    /// [`finish`](Self::finish) without a future when the store need not be written
    /// (a request that only read, or changed nothing the store keeps).
    pub(crate) fn finish_now(&self) -> Finish {
        if self.is_client_side() {
            return Finish::Ready(
                self.commit_client_side(None)
                    .and_then(|_| self.response_cookies()),
            );
        }
        let plan = self.plan(None, SystemTime::now());
        if plan.retired.is_empty() && plan.write.is_none() {
            return Finish::Ready(self.response_cookies());
        }
        let session = self.clone();
        Finish::Pending(Box::pin(async move {
            session.apply(plan).await?;
            session.response_cookies()
        }))
    }

    /// The `Set-Cookie` header values that the last commit calls for.
    fn response_cookies(&self) -> Result<Vec<HeaderValue>, Error> {
        let mut state = self.lock();
        let config = &self.inner.sessions.config;
        let secure = self.inner.secure;
        match std::mem::replace(&mut state.cookie, CookieAction::None) {
            CookieAction::None => Ok(Vec::new()),
            CookieAction::Set => {
                let max_age = state
                    .deadline
                    .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default());
                match &config.client {
                    None => Ok(
                        cookies::set_id_cookie(&config.cookie, &state.id, max_age, secure)
                            .into_iter()
                            .collect(),
                    ),
                    Some(store) => {
                        let sealed = Sealed {
                            id: state.id.as_str().to_owned(),
                            exp: state.deadline.map(to_millis),
                            values: Values::clone(&state.values),
                        };
                        let headers = cookies::set_sealed_cookies(
                            &config.cookie,
                            store,
                            &sealed,
                            max_age,
                            secure,
                            state.chunks,
                        )?;
                        state.chunks = sealed_chunks(&headers);
                        Ok(headers)
                    }
                }
            }
            CookieAction::Remove => {
                let chunks = std::mem::take(&mut state.chunks);
                Ok(cookies::removal_cookies(&config.cookie, secure, chunks))
            }
        }
    }

    /// Client-side sessions: there is no store; a write re-seals the whole session into
    /// the response's cookies.
    fn commit_client_side(&self, extra: Option<Change>) -> Result<Vec<i64>, Error> {
        if extra.is_some() {
            return Err(unsupported(
                StoreOp::Commit,
                "atomic increments need a server-side store: a client-side session cannot see concurrent requests (use get + set)",
            )
            .into());
        }
        let plan = self.plan(None, SystemTime::now());
        let mut regenerated = false;
        for (key, reason) in &plan.retired {
            regenerated |= *reason == DestroyReason::Regenerated;
            self.inner.sessions.fire_destroy(key, *reason);
        }
        if let Some((_, patch)) = plan.write {
            if patch.create && !regenerated {
                self.inner.sessions.config.events.created();
            }
            let mut state = self.lock();
            state.stored = true;
            state.deadline = patch.expires_at;
            state.cookie = CookieAction::Set;
        }
        Ok(Vec::new())
    }

    /// Applies pending changes plus `extra`; returns the counters of the write.
    async fn commit(&self, extra: Option<Change>) -> Result<Vec<i64>, Error> {
        if self.is_client_side() {
            return self.commit_client_side(extra);
        }
        self.apply(self.plan(extra, SystemTime::now())).await
    }

    /// Carries out a plan on the store; returns the counters of the write.
    async fn apply(&self, plan: Plan) -> Result<Vec<i64>, Error> {
        let store = &self.inner.sessions.config.store;
        // A regenerated session is written as new under its new id, but it is the
        // same session: count it as regenerated, not created.
        let regenerated = plan
            .retired
            .iter()
            .any(|(_, reason)| *reason == DestroyReason::Regenerated);
        for (key, reason) in &plan.retired {
            if let Err(e) = store.destroy(key).await {
                self.restore(plan);
                return Err(e.into());
            }
            self.inner.sessions.fire_destroy(key, *reason);
        }
        let reindex = plan.reindex;
        let Some((key, mut patch)) = plan.write else {
            return Ok(Vec::new());
        };
        let mut outcome = store.commit(&key, &patch).await;
        if let Ok(Committed::Missing) = outcome {
            // Destroyed or expired since it was loaded: never resurrect it. This
            // request's own changes go to a fresh session instead.
            let (key, fresh) = self.restart_fresh(&patch);
            patch = fresh;
            outcome = store.commit(&key, &patch).await;
        }
        match outcome {
            Ok(Committed::Applied { counters }) => {
                if patch.create && !regenerated {
                    self.inner.sessions.config.events.created();
                }
                let user = {
                    let mut state = self.lock();
                    if state.key.as_ref() == Some(&key) {
                        state.stored = true;
                        if state.deadline != patch.expires_at || patch.create {
                            state.cookie = CookieAction::Set;
                        }
                        state.deadline = patch.expires_at;
                    }
                    (reindex || patch.create)
                        .then(|| state.values.get(reserved::USER))
                        .flatten()
                        .map(|raw| String::from_utf8_lossy(raw).into_owned())
                };
                if let Some(user) = user {
                    store.index_user(&user, &key, patch.expires_at).await?;
                }
                Ok(counters)
            }
            Ok(Committed::Missing) => Ok(Vec::new()),
            Err(e) => {
                self.lock().requeue(patch);
                Err(e.into())
            }
        }
    }

    /// Takes what must be written out of the state.
    fn plan(&self, extra: Option<Change>, now: SystemTime) -> Plan {
        let config = &self.inner.sessions.config;
        let mut state = self.lock();
        let retired = std::mem::take(&mut state.retired);
        let consumed_flashes = std::mem::take(&mut state.consumed_flashes);
        for stored in &consumed_flashes {
            if state.values.contains_key(stored) {
                state.remove(stored.clone());
            }
        }
        let create = !state.stored;
        if create
            && config.absolute_timeout.is_some()
            && !state.values.contains_key(reserved::CREATED)
        {
            let created = now
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            state.put(
                reserved::CREATED.to_owned(),
                Bytes::from(created.to_string()),
            );
        }
        let dirty = !state.changes.is_empty() || state.clear || state.write_all || extra.is_some();
        let wanted = state.wanted_deadline(config.idle_timeout, config.absolute_timeout, now);
        let refresh = state.expiry_changed
            || needs_refresh(state.deadline, wanted, &state, config.idle_timeout);
        let write = if !dirty && (create || !refresh) {
            None
        } else {
            let mut changes = if state.write_all {
                state.changes.clear();
                state
                    .values
                    .iter()
                    .map(|(k, v)| Change::Set(k.to_owned(), Bytes::copy_from_slice(v)))
                    .collect()
            } else {
                std::mem::take(&mut state.changes)
            };
            changes.extend(extra);
            let patch = Patch {
                create,
                clear: std::mem::take(&mut state.clear) || state.write_all,
                changes,
                expires_at: if refresh || create {
                    wanted
                } else {
                    state.deadline
                },
            };
            state.write_all = false;
            state.expiry_changed = false;
            Some((state.key(&self.inner.sessions), patch))
        };
        let reindex = write.is_some() && (create || refresh || state.user_changed);
        if write.is_some() {
            state.user_changed = false;
        }
        Plan {
            retired,
            write,
            reindex,
        }
    }

    /// Puts back what a failed commit took, so that a retry writes it.
    fn restore(&self, plan: Plan) {
        let mut state = self.lock();
        let mut retired = plan.retired;
        retired.append(&mut state.retired);
        state.retired = retired;
        if let Some((_, patch)) = plan.write {
            state.requeue(patch);
        }
    }

    /// Replaces a vanished session with a fresh one holding only `patch`'s changes.
    fn restart_fresh(&self, patch: &Patch) -> (StoreKey, Patch) {
        let config = &self.inner.sessions.config;
        let id = config.ids.generate();
        let mut values = Values::default();
        let only_writes = Patch {
            changes: patch
                .changes
                .iter()
                .filter(|c| !matches!(c, Change::Increment(..)))
                .cloned()
                .collect(),
            ..Patch::default()
        };
        // Set and Remove cannot fail.
        let _ = apply_changes(&mut values, &only_writes, "local");
        let key = self.inner.sessions.store_key(&id);
        let mut state = self.lock();
        *state = State::new(
            id,
            Some(key.clone()),
            true,
            false,
            Record {
                values: Arc::new(values),
                expires_at: None,
            },
        );
        let now = SystemTime::now();
        let expires_at = state.wanted_deadline(config.idle_timeout, config.absolute_timeout, now);
        let fresh = Patch {
            create: true,
            clear: false,
            changes: patch.changes.clone(),
            expires_at,
        };
        (key, fresh)
    }
}

/// How many numbered chunk cookies (`name.1`, ...) a set of live `Set-Cookie` headers
/// leaves in the browser: every header but the first, minus removals.
fn sealed_chunks(headers: &[HeaderValue]) -> usize {
    headers
        .iter()
        .skip(1)
        .filter(|h| !h.to_str().is_ok_and(|s| s.contains("Max-Age=0")))
        .count()
}

/// Whether the stored deadline is far enough behind the wanted one to be worth a write.
///
/// Sliding expiry moves in steps of a tenth of the idle timeout: a request that changes
/// nothing writes (and resends the cookie) at most once per step, so the stored
/// deadline and the cookie's stay equal, and the session lives between 90% and 100%
/// of its idle timeout after the last request.
fn needs_refresh(
    stored: Option<SystemTime>,
    wanted: Option<SystemTime>,
    state: &State,
    idle: Option<Duration>,
) -> bool {
    match (stored, wanted) {
        (None, None) => false,
        (Some(s), Some(w)) => {
            let idle = state.timeout.or(idle).unwrap_or_default();
            w.duration_since(s).is_ok_and(|ahead| ahead > idle / 10)
        }
        _ => true,
    }
}

impl State {
    fn new(
        id: SessionId,
        key: Option<StoreKey>,
        is_new: bool,
        stored: bool,
        record: Record,
    ) -> Self {
        let mut state = State {
            key,
            id,
            is_new,
            stored,
            values: record.values,
            deadline: record.expires_at,
            changes: Vec::new(),
            clear: false,
            write_all: false,
            expiry_changed: false,
            consumed_flashes: Vec::new(),
            retired: Vec::new(),
            cookie: CookieAction::None,
            chunks: 0,
            has_immutables: false,
            timeout: None,
            user_changed: false,
        };
        state.scan_reserved();
        state
    }

    /// The store key of the current id, derived on first use.
    fn key(&mut self, sessions: &Sessions) -> StoreKey {
        self.key
            .get_or_insert_with(|| sessions.store_key(&self.id))
            .clone()
    }

    /// Reads what the reserved keys say about the session in one pass over the keys
    /// (no hashing: sessions are small).
    fn scan_reserved(&mut self) {
        for (k, v) in self.values.raw_iter() {
            if !k.starts_with(reserved::PREFIX.as_bytes()) {
                continue;
            }
            if k.starts_with(reserved::IMMUTABLE.as_bytes()) {
                self.has_immutables = true;
            } else if k == reserved::TIMEOUT.as_bytes() {
                self.timeout = parse_counter(v)
                    .and_then(|secs| u64::try_from(secs).ok())
                    .map(Duration::from_secs);
            }
        }
    }

    fn is_immutable(&self, key: &str) -> bool {
        self.has_immutables && self.values.contains_key(&immutable_key(key))
    }

    fn put(&mut self, key: String, value: Bytes) {
        Arc::make_mut(&mut self.values).insert(&key, &value);
        self.changes.push(Change::Set(key, value));
    }

    fn remove(&mut self, key: String) {
        Arc::make_mut(&mut self.values).remove(&key);
        self.changes.push(Change::Remove(key));
    }

    /// Puts a patch that failed back in front of the pending changes, so that a retried
    /// `save` still writes it. Increments are not retried: their caller saw the error.
    fn requeue(&mut self, patch: Patch) {
        let mut changes = patch.changes;
        if changes
            .iter()
            .any(|c| matches!(c, Change::Set(k, _) if k == reserved::USER))
        {
            self.user_changed = true;
        }
        changes.retain(|c| !matches!(c, Change::Increment(..)));
        changes.append(&mut self.changes);
        self.changes = changes;
        self.clear |= patch.clear;
    }

    /// The deadline this session should have if it were touched `now`.
    fn wanted_deadline(
        &self,
        idle: Option<Duration>,
        absolute: Option<Duration>,
        now: SystemTime,
    ) -> Option<SystemTime> {
        let idle_deadline = self.timeout.or(idle).map(|d| now + d);
        let absolute_deadline = absolute.map(|limit| {
            let created = self
                .values
                .get(reserved::CREATED)
                .and_then(parse_counter)
                .and_then(|ms| u64::try_from(ms).ok())
                .map_or(now, |ms| UNIX_EPOCH + Duration::from_millis(ms));
            created + limit
        });
        match (idle_deadline, absolute_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
