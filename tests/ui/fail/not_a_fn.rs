#[tinyo::isolated]
struct NotATest;

fn main() {}
