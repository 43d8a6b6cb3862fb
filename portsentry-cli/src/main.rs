//! `portsentry`: detect port scans, log them and answer them.

fn main() {
    println!("portsentry {}", portsentry_core::VERSION);
}
