#[tinyo::isolated]
async fn t() {}

fn main() {}
