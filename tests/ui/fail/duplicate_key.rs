#[tinyo::isolated(timeout = "1s", timeout = "2s")]
fn t() {}

fn main() {}
