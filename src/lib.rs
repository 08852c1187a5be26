//! tinyo
