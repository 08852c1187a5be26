#[tinyo::isolated]
fn t(port: u16) {
    let _ = port;
}

fn main() {}
