//! `sqlx::migrate!` embeds `migrations/` at compile time; rebuild when that directory
//! changes, or a new migration would silently be missing from every binary.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
