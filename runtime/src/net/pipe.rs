//! In-memory byte pipes: one direction of a loopback TCP connection.
//!
//! A pipe is a bounded buffer shared by one writer and one reader. A write lands in
//! the buffer before the call returns, so nothing is lost when the writer's store is
//! dropped right after writing (the pitfall of wasmtime-wasi's `AsyncWriteStream`,
//! whose background task dies with the store; ENGINE-NOTES, "Providing wasi:sockets
//! in memory"). Closing the write side is an EOF the reader sees only after the data
//! already buffered; closing the read side makes further writes fail, as a peer's
//! reset does.
//!
//! The same halves serve both sides of the runtime: guests get them as wasi:io
//! streams ([`InputStream`], [`OutputStream`], [`Pollable`]) and host code as tokio
//! [`AsyncRead`] / [`AsyncWrite`]. The capacity is the backpressure: `check-write`
//! reports the free space and the writer's pollable is ready when some is free.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes one direction of a connection buffers before the writer must wait: the
/// order of a Linux socket's default buffer, small enough that a pod with many
/// connections stays cheap.
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// The shared state of one pipe. Cloning shares it; it is what a socket keeps to
/// shut a direction down while the stream handles live in the resource table.
#[derive(Clone)]
pub struct Pipe(Arc<Mutex<State>>);

struct State {
    buf: BytesMut,
    capacity: usize,
    /// The writer is gone or shut down: EOF once `buf` is drained.
    write_closed: bool,
    /// The reader is gone or shut down: writes fail, buffered data is dropped.
    read_closed: bool,
    /// Who waits for data (or EOF). One slot suffices: each side has one owner,
    /// and a guest's `poll` of several pollables runs in one host task.
    reader: Option<Waker>,
    /// Who waits for space (or for the reader to go away).
    writer: Option<Waker>,
}

/// A new pipe with the default capacity: (write end, read end).
pub fn pipe() -> (PipeWriter, PipeReader) {
    pipe_with_capacity(PIPE_CAPACITY)
}

/// A new pipe holding at most `capacity` unread bytes.
pub fn pipe_with_capacity(capacity: usize) -> (PipeWriter, PipeReader) {
    let pipe = Pipe(Arc::new(Mutex::new(State {
        buf: BytesMut::new(),
        capacity: capacity.max(1),
        write_closed: false,
        read_closed: false,
        reader: None,
        writer: None,
    })));
    (PipeWriter(pipe.clone()), PipeReader(pipe))
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shuts the write side: the reader gets EOF after what is buffered.
    pub fn close_write(&self) {
        let mut s = self.lock();
        s.write_closed = true;
        s.wake_both();
    }

    /// Shuts the read side: buffered data is discarded and writes fail.
    pub fn close_read(&self) {
        let mut s = self.lock();
        s.read_closed = true;
        s.buf = BytesMut::new();
        s.wake_both();
    }

    /// Up to `max` buffered bytes; empty when none yet; `None` at end of stream.
    fn read(&self, max: usize) -> Option<Bytes> {
        let mut s = self.lock();
        if s.read_closed || (s.buf.is_empty() && s.write_closed) {
            return None;
        }
        let n = max.min(s.buf.len());
        let data = s.buf.split_to(n).freeze();
        if n > 0 {
            wake(&mut s.writer);
        }
        Some(data)
    }

    /// Free space; `None` once either side is closed.
    fn space(&self) -> Option<usize> {
        let s = self.lock();
        s.open().then(|| s.capacity.saturating_sub(s.buf.len()))
    }

    /// Appends as much of `data` as fits; `None` once either side is closed.
    fn write(&self, data: &[u8]) -> Option<usize> {
        let mut s = self.lock();
        if !s.open() {
            return None;
        }
        let n = data.len().min(s.capacity.saturating_sub(s.buf.len()));
        s.buf.extend_from_slice(&data[..n]);
        if n > 0 {
            wake(&mut s.reader);
        }
        Some(n)
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if !s.buf.is_empty() || s.write_closed || s.read_closed {
            return Poll::Ready(());
        }
        s.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if !s.open() || s.buf.len() < s.capacity {
            return Poll::Ready(());
        }
        s.writer = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl State {
    fn open(&self) -> bool {
        !self.write_closed && !self.read_closed
    }

    fn wake_both(&mut self) {
        wake(&mut self.reader);
        wake(&mut self.writer);
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

/// The read end. Dropping it closes the read side.
pub struct PipeReader(Pipe);

/// The write end. Dropping it closes the write side (EOF for the reader).
pub struct PipeWriter(Pipe);

impl PipeReader {
    /// The shared pipe, for shutting it down from elsewhere.
    pub fn pipe(&self) -> Pipe {
        self.0.clone()
    }
}

impl PipeWriter {
    pub fn pipe(&self) -> Pipe {
        self.0.clone()
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.close_read();
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.close_write();
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeReader {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.0.poll_readable(cx)).await
    }
}

impl InputStream for PipeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.0.read(size).ok_or(StreamError::Closed)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.0.poll_writable(cx)).await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let space = self.0.space().ok_or(StreamError::Closed)?;
        if bytes.len() > space {
            // wasi:io requires `check-write` first; writing past it is a guest bug.
            return Err(StreamError::trap("write exceeds the permit from check-write"));
        }
        self.0.write(&bytes).ok_or(StreamError::Closed).map(drop)
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Writes are already in the buffer: there is nothing to flush.
        self.0.space().map(drop).ok_or(StreamError::Closed)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.0.space().ok_or(StreamError::Closed)
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.0.poll_readable(cx).is_pending() {
            return Poll::Pending;
        }
        // `None` is end of stream: leaving `buf` unfilled says so to tokio.
        if let Some(data) = self.0.read(buf.remaining()) {
            buf.put_slice(&data);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.0.poll_writable(cx).is_pending() {
            return Poll::Pending;
        }
        match self.0.write(data) {
            Some(n) => Poll::Ready(Ok(n)),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close_write();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_comes_after_the_buffered_data() {
        let (mut w, mut r) = pipe();
        w.write(Bytes::from_static(b"hello")).unwrap();
        drop(w);
        assert_eq!(&r.read(3).unwrap()[..], b"hel");
        assert_eq!(&r.read(10).unwrap()[..], b"lo");
        assert!(matches!(r.read(10), Err(StreamError::Closed)));
    }

    #[test]
    fn capacity_is_backpressure_and_a_gone_reader_fails_writes() {
        let (mut w, mut r) = pipe_with_capacity(4);
        assert_eq!(w.check_write().unwrap(), 4);
        w.write(Bytes::from_static(b"abcd")).unwrap();
        assert_eq!(w.check_write().unwrap(), 0);
        assert!(matches!(w.write(Bytes::from_static(b"e")), Err(StreamError::Trap(_))));
        assert_eq!(&r.read(2).unwrap()[..], b"ab");
        assert_eq!(w.check_write().unwrap(), 2);
        assert!(r.read(0).unwrap().is_empty());
        drop(r);
        assert!(matches!(w.check_write(), Err(StreamError::Closed)));
    }

    #[tokio::test]
    async fn host_halves_wait_for_space_and_data() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut w, mut r) = pipe_with_capacity(3);
        let writer = tokio::spawn(async move {
            w.write_all(b"0123456789").await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, b"0123456789");
    }
}
