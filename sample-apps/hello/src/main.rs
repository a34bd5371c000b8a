//! The smallest Warden app: prints a greeting through WASI stdout and exits 0.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("hello from a Warden app (args: {args:?})");
}
