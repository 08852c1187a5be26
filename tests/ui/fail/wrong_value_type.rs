#[tinyo::isolated(timeout = 5, hostname = db)]
fn t() {}

fn main() {}
