//! Producer and consumer throughput of `weir-client` against a running broker: the client half
//! of `bench/client.py`, which runs it beside librdkafka (kcat) with the same settings.
//!
//! ```text
//! throughput produce BOOTSTRAP TOPIC RECORDS RECORD_BYTES ACKS   # ACKS: 0, 1 or all
//! throughput consume BOOTSTRAP TOPIC BYTES                        # read BYTES from offset 0
//! ```
//!
//! Prints one line of JSON with the records, bytes and seconds measured. The producer sends
//! without waiting for each delivery (as an application producing a stream would): a bounded
//! window of delivery handles is awaited in order, so a failed record stops the run.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_client::consumer::TopicPartition;
use weir_client::producer::Acks;
use weir_client::{
    ClientConfig, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord,
};

/// Delivery handles kept before awaiting the oldest: far more than the records of the batches
/// in flight, so the window never throttles the producer, while memory stays bounded.
const WINDOW: usize = 1 << 20;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["produce", bootstrap, topic, records, size, acks] => {
            produce(bootstrap, topic, records, size, acks).await
        }
        ["consume", bootstrap, topic, bytes] => consume(bootstrap, topic, bytes).await,
        _ => Err(
            "usage: throughput produce BOOTSTRAP TOPIC RECORDS RECORD_BYTES ACKS | \
                  throughput consume BOOTSTRAP TOPIC BYTES"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("throughput: {err}");
            ExitCode::FAILURE
        }
    }
}

fn number(text: &str, what: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|err| format!("{what} must be a number, got {text:?}: {err}"))
}

async fn produce(
    bootstrap: &str,
    topic: &str,
    records: &str,
    size: &str,
    acks: &str,
) -> Result<(), String> {
    let records = number(records, "RECORDS")?;
    let size = usize::try_from(number(size, "RECORD_BYTES")?).map_err(|e| e.to_string())?;
    let acks = match acks {
        "0" => Acks::None,
        "1" => Acks::Leader,
        "all" | "-1" => Acks::All,
        other => return Err(format!("ACKS must be 0, 1 or all, got {other:?}")),
    };
    // Idempotence needs acks=all (as in the Java client); with acks=all the default
    // (idempotent) is what is measured.
    let client = ClientConfig::new([bootstrap]).allow_auto_create_topics(true);
    let config = ProducerConfig::from(client)
        .acks(acks)
        .idempotence(acks == Acks::All);
    let producer = Producer::new(config).map_err(|e| e.to_string())?;
    let value = Bytes::from(vec![b'x'; size]);
    let mut window = VecDeque::with_capacity(WINDOW.min(1 << 16));
    let started = Instant::now();
    for _ in 0..records {
        let record = ProducerRecord::new(topic, value.clone()).partition(0);
        let delivery = producer.send(record).await.map_err(|e| e.to_string())?;
        if window.len() == WINDOW
            && let Some(oldest) = window.pop_front()
        {
            let _: weir_client::RecordMetadata = wait(oldest).await?;
        }
        window.push_back(delivery);
    }
    producer.flush().await.map_err(|e| e.to_string())?;
    for delivery in window {
        wait(delivery).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    producer.close().await.map_err(|e| e.to_string())?;
    let bytes = records * size as u64;
    println!(
        "{{\"mode\":\"produce\",\"records\":{records},\"bytes\":{bytes},\"seconds\":{seconds:.3},\
         \"records_per_s\":{:.0},\"mb_per_s\":{:.1}}}",
        records as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    Ok(())
}

async fn wait(
    delivery: weir_client::DeliveryFuture,
) -> Result<weir_client::RecordMetadata, String> {
    delivery.await.map_err(|e| e.to_string())
}

async fn consume(bootstrap: &str, topic: &str, bytes: &str) -> Result<(), String> {
    let want = number(bytes, "BYTES")?;
    let mut consumer = Consumer::new(ConsumerConfig::new(ClientConfig::new([bootstrap])));
    let tp = TopicPartition::new(topic, 0);
    consumer.assign([tp.clone()]).map_err(|e| e.to_string())?;
    consumer.seek_to_beginning(&tp).map_err(|e| e.to_string())?;
    let (mut records, mut seen) = (0_u64, 0_u64);
    let started = Instant::now();
    while seen < want {
        let batch = consumer
            .poll(Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            return Err(format!("no record for 10 s after {seen} bytes"));
        }
        for record in &batch {
            records += 1;
            seen += record.value.as_ref().map_or(0, |v| v.len() as u64);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    consumer.close().await.map_err(|e| e.to_string())?;
    println!(
        "{{\"mode\":\"consume\",\"records\":{records},\"bytes\":{seen},\"seconds\":{seconds:.3},\
         \"records_per_s\":{:.0},\"mb_per_s\":{:.1}}}",
        records as f64 / seconds,
        seen as f64 / seconds / 1e6
    );
    Ok(())
}
