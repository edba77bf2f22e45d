//! [`StoreFuture`]: the future every store method returns.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use crate::error::StoreError;

/// The future returned by [`Store`](super::Store) methods.
///
/// Stores that answer synchronously (the memory store) return
/// [`StoreFuture::ready`], which costs no allocation; networked stores wrap an
/// `async` block with [`StoreFuture::new`]. A concrete type rather than
/// `async fn` keeps `Store` usable as `dyn Store`.
pub struct StoreFuture<'a, T> {
    inner: Inner<'a, T>,
}

enum Inner<'a, T> {
    Ready(Option<Result<T, StoreError>>),
    Boxed(Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>),
}

impl<'a, T> StoreFuture<'a, T> {
    /// A future that is already complete.
    pub fn ready(result: Result<T, StoreError>) -> Self {
        StoreFuture {
            inner: Inner::Ready(Some(result)),
        }
    }

    /// The result, if the future is already complete (nothing polled yet); else the
    /// future itself.
    pub(crate) fn into_ready(self) -> Result<Result<T, StoreError>, Self> {
        match self.inner {
            Inner::Ready(Some(result)) => Ok(result),
            inner => Err(StoreFuture { inner }),
        }
    }

    /// Wraps an asynchronous computation.
    pub fn new(fut: impl Future<Output = Result<T, StoreError>> + Send + 'a) -> Self {
        StoreFuture {
            inner: Inner::Boxed(Box::pin(fut)),
        }
    }
}

// `T` is only ever moved out whole, never pinned, so the future is `Unpin` for any `T`.
impl<T> Unpin for StoreFuture<'_, T> {}

impl<T> Future for StoreFuture<'_, T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().inner {
            Inner::Ready(value) => match value.take() {
                Some(v) => Poll::Ready(v),
                None => panic!("StoreFuture polled after completion"),
            },
            Inner::Boxed(fut) => fut.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreFuture").finish_non_exhaustive()
    }
}
