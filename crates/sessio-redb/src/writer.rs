//! Group commit: one thread owns redb's single writer and applies queued writes in
//! batches, one write transaction (and, with immediate durability, one `fsync`) per
//! batch. A caller gets its answer only after the transaction holding its write has
//! committed, so an acknowledged write is exactly as durable as a lone commit.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{mpsc, Arc},
};

use redb::WriteTransaction;
use sessio::store::{StoreError, StoreOp};
use tokio::sync::oneshot;

use crate::{
    error::{Abandoned, InBatch},
    ops::{db_error, Shared, Written},
    store::{Durability, NAME},
};

/// Writes applied per transaction at most: bounds the latency a batch adds.
const MAX_BATCH: usize = 256;

/// A message to the writer thread.
pub(crate) enum Msg {
    /// A write to apply.
    Job(Box<dyn Job>),
    /// Make everything committed so far durable, then answer.
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// A queued write, type-erased so that one batch can hold writes of any result type.
pub(crate) trait Job: Send {
    /// Applies the write inside `txn`; `Err` aborts the whole batch.
    fn run(&mut self, shared: &Shared, txn: &WriteTransaction) -> Result<(), StoreError>;
    /// Answers the caller once the batch committed (`Ok`) or failed.
    fn complete(self: Box<Self>, batch: Result<(), &Arc<StoreError>>);
}

struct Typed<T, F> {
    op: StoreOp,
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

/// Wraps `work` as a [`Job`]; its answer arrives on the returned receiver.
pub(crate) fn job<T, F>(
    op: StoreOp,
    work: F,
) -> (Box<dyn Job>, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&Shared, &WriteTransaction) -> Written<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job = Typed {
        op,
        work: Some(work),
        result: None,
        reply: Some(tx),
    };
    (Box::new(job), rx)
}

/// The error every caller of a failed batch gets: same kind, the one cause as source.
pub(crate) fn batch_error(op: StoreOp, cause: &Arc<StoreError>) -> StoreError {
    StoreError::new(NAME, op, cause.kind().clone()).with_source(InBatch(cause.clone()))
}

/// The error of a caller whose reply was dropped (redb panicked in its batch).
pub(crate) fn abandoned(op: StoreOp) -> StoreError {
    StoreError::unavailable(NAME, op, Abandoned)
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Shared, &WriteTransaction) -> Written<T> + Send + 'static,
{
    fn run(&mut self, shared: &Shared, txn: &WriteTransaction) -> Result<(), StoreError> {
        if let Some(work) = self.work.take() {
            self.result = Some(work(shared, txn)?);
        }
        Ok(())
    }

    fn complete(mut self: Box<Self>, batch: Result<(), &Arc<StoreError>>) {
        let answer = match (batch, self.result.take()) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(abandoned(self.op)),
            (Err(cause), _) => Err(batch_error(self.op, cause)),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have stopped waiting; the write stands regardless.
            let _ = reply.send(answer);
        }
    }
}

/// The writer thread: runs until every sender is gone, then flushes.
pub(crate) fn run(shared: Arc<Shared>, rx: mpsc::Receiver<Msg>) {
    let mut dirty = false;
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while msgs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => msgs.push(msg),
                Err(_) => break,
            }
        }
        // A panic inside redb drops this batch's replies (their callers get an
        // error) but keeps the thread, and so the store, alive.
        if catch_unwind(AssertUnwindSafe(|| batch(&shared, msgs, &mut dirty))).is_err() {
            tracing::error!("redb store: redb panicked while applying a batch of writes");
        }
    }
    if dirty {
        if let Err(e) = commit_durably(&shared) {
            tracing::error!(error = %e, "redb store: the final flush failed; the last commits may be lost");
        }
    }
    tracing::debug!("redb store: writer stopped");
}

fn commit_durably(shared: &Shared) -> Result<(), StoreError> {
    let op = StoreOp::Commit;
    let mut txn = shared.db.begin_write().map_err(|e| db_error(op, e))?;
    txn.set_quick_repair(shared.quick_repair);
    txn.commit().map_err(|e| db_error(op, e))
}

fn batch(shared: &Shared, msgs: Vec<Msg>, dirty: &mut bool) {
    let mut jobs = Vec::with_capacity(msgs.len());
    let mut flushes = Vec::new();
    for msg in msgs {
        match msg {
            Msg::Job(job) => jobs.push(job),
            Msg::Flush(reply) => flushes.push(reply),
        }
    }
    let durable = shared.durability == Durability::Immediate || !flushes.is_empty();
    let result = if jobs.is_empty() && !(*dirty && durable) {
        Ok(())
    } else {
        apply(shared, &mut jobs, durable).map_err(Arc::new)
    };
    if result.is_ok() {
        *dirty = !durable && (*dirty || !jobs.is_empty());
    }
    for job in jobs {
        job.complete(result.as_ref().map(|_| ()));
    }
    for reply in flushes {
        let _ = reply.send(match &result {
            Ok(()) => Ok(()),
            Err(cause) => Err(batch_error(StoreOp::Commit, cause)),
        });
    }
}

fn apply(shared: &Shared, jobs: &mut [Box<dyn Job>], durable: bool) -> Result<(), StoreError> {
    let op = StoreOp::Commit;
    let mut txn = shared.db.begin_write().map_err(|e| db_error(op, e))?;
    if !durable {
        txn.set_durability(redb::Durability::None)
            .map_err(|e| db_error(op, redb::Error::from(e)))?;
    }
    txn.set_quick_repair(shared.quick_repair);
    for job in jobs.iter_mut() {
        // On error the transaction is dropped, which aborts it: nothing of the batch
        // is written, and every caller gets the error.
        job.run(shared, &txn)?;
    }
    txn.commit().map_err(|e| db_error(op, e))
}
