#[tinyo::isolated(net = "wifi")]
fn t() {}

fn main() {}
