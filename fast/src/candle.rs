//! candle adapter (in progress).
