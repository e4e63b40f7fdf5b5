//! tch adapter (in progress).
