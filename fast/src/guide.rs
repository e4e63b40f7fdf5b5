//! The user guide: the pages of `docs/`, rendered here so that docs.rs shows them.
