//! `sqlx::migrate!` embeds `migrations/` at compile time; rebuild when that directory
//! changes (a new migration file would otherwise not be picked up).
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
