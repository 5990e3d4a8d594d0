//! Floating-point values as JSON numbers: shared by column values
//! (`value`), binary JSON doubles (`jsonb`) and snapshot rows.

/// Appends the shortest text that reads back as `v` (exponent form outside
/// 1e-5..1e16); non-finite values (which MySQL cannot store) as `null`.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    if !v.is_finite() {
        out.extend_from_slice(b"null");
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-5) {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Like [`write_f64`] for FLOAT: the shortest text that reads back as the
/// same `f32` (1.1, not 1.100000023841858).
pub fn write_f32(out: &mut Vec<u8>, v: f32) {
    use std::io::Write;
    if !v.is_finite() {
        out.extend_from_slice(b"null");
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-5) {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}
