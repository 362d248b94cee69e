//! Errors crossing the wasm boundary: an export that fails returns 0 (or a null handle) and leaves a message here,
//! which the TS side reads with `last_error_ptr`/`last_error_len` and throws as a typed error.

use std::cell::RefCell;

/// An error with a message meant for the user (it names the tensor, dimension or argument at fault).
#[derive(Debug, Clone, PartialEq)]
pub struct CoreError(pub String);

impl CoreError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `e` as the last error.
pub fn set_last_error(e: &CoreError) {
    LAST_ERROR.with(|l| *l.borrow_mut() = e.0.clone());
}

/// Runs `f` with the last error's UTF-8 bytes.
pub fn with_last_error<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    LAST_ERROR.with(|l| f(l.borrow().as_bytes()))
}
