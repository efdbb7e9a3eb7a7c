/**
 * The instance's boot script (cloud-init, as root, at every boot): mount the WAL volume, install
 * Node.js 24 and Cairn, and run Cairn under systemd. Values may be CDK tokens (resolved at deploy).
 */

/** Where the WAL volume is mounted: Cairn's `--data-dir`. */
export const DATA_DIR = '/var/lib/cairn';
/** Where Cairn's sources are unpacked and its production dependencies installed. */
export const INSTALL_DIR = '/opt/cairn';
/** Device name the WAL volume is attached as (an NVMe device on Nitro instances). */
export const WAL_DEVICE_NAME = '/dev/sdf';
/** Cairn's port on the instance (the protocol's default, PROTOCOL.md §13.1). */
export const CAIRN_PORT = 4437;

export interface UserDataOptions {
  /** EBS volume id (`vol-…`) of the WAL volume. */
  walVolumeId: string;
  /** Node.js release, e.g. `24.21.0`. */
  nodeVersion: string;
  /** `arm64` or `x64` (Node.js's names). */
  nodeArch: 'arm64' | 'x64';
  /** Local path of the downloaded source archive (zip). */
  sourceZip: string;
  bucketName: string;
  bucketPrefix: string;
  region: string;
  longPollTimeoutMs: number;
  allowUnauthenticated: boolean;
}

/** The environment file systemd passes to Cairn (every flag has a `CAIRN_*` twin). */
export function cairnEnvironment(options: UserDataOptions): string[] {
  return [
    'CAIRN_HOST=0.0.0.0',
    `CAIRN_PORT=${CAIRN_PORT}`,
    `CAIRN_DATA_DIR=${DATA_DIR}`,
    'CAIRN_DURABILITY=wal',
    'CAIRN_OBJECT_STORE=s3',
    `CAIRN_S3_BUCKET=${options.bucketName}`,
    `CAIRN_S3_PREFIX=${options.bucketPrefix}`,
    `CAIRN_S3_REGION=${options.region}`,
    `CAIRN_LONG_POLL_TIMEOUT_MS=${options.longPollTimeoutMs}`,
    options.allowUnauthenticated ? 'CAIRN_ALLOW_UNAUTHENTICATED=true' : 'CAIRN_AUTH_TOKENS_FILE=/etc/cairn/auth-tokens',
  ];
}

/**
 * The commands, one per line, run at every boot after the source archive is downloaded: idempotent,
 * so a reboot, a stop/start or a deploy of new sources ends with the current Cairn running over the
 * same WAL.
 */
export function bootCommands(options: UserDataOptions): string[] {
  const node = `node-v${options.nodeVersion}-linux-${options.nodeArch}`;
  return [
    // The WAL volume is attached by this script, not by CloudFormation: a replacement instance
    // (new AMI) waits until the previous one has let go of it (CloudFormation terminates the old
    // instance after the new one exists), so two Cairns never share a WAL and the WAL moves on.
    `WAL_VOLUME_ID='${options.walVolumeId}'`,
    `AWS_EC2="aws ec2 --region ${options.region}"`,
    "IMDS_TOKEN=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')",
    'INSTANCE_ID=$(curl -fsS -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" http://169.254.169.254/latest/meta-data/instance-id)',
    `until [ "$($AWS_EC2 describe-volumes --volume-ids "$WAL_VOLUME_ID" --query 'Volumes[0].Attachments[0].InstanceId' --output text)" = "$INSTANCE_ID" ]; do`,
    `  if [ "$($AWS_EC2 describe-volumes --volume-ids "$WAL_VOLUME_ID" --query 'Volumes[0].State' --output text)" = available ]; then`,
    `    $AWS_EC2 attach-volume --volume-id "$WAL_VOLUME_ID" --instance-id "$INSTANCE_ID" --device ${WAL_DEVICE_NAME} || true`,
    '  fi',
    '  sleep 10',
    'done',
    // On Nitro instances the volume appears as an NVMe device named by its volume id.
    'WAL_DEVICE=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$(echo "$WAL_VOLUME_ID" | tr -d -)',
    'for attempt in $(seq 1 120); do [ -e "$WAL_DEVICE" ] && break; sleep 5; done',
    '[ -e "$WAL_DEVICE" ] || { echo "WAL volume never appeared at $WAL_DEVICE" >&2; exit 1; }',
    // Format only an empty volume: a volume that already holds a WAL (instance replaced) keeps it.
    'blkid "$WAL_DEVICE" || mkfs.xfs "$WAL_DEVICE"',
    `mkdir -p ${DATA_DIR}`,
    `grep -q ' ${DATA_DIR} ' /etc/fstab || echo "UUID=$(blkid -s UUID -o value "$WAL_DEVICE") ${DATA_DIR} xfs defaults,nofail 0 2" >> /etc/fstab`,
    `mountpoint -q ${DATA_DIR} || mount ${DATA_DIR}`,
    // Node.js 24 from nodejs.org, checked against the release's published checksums.
    'dnf install -y unzip tar xz',
    `if [ "$(/opt/node/bin/node --version 2>/dev/null)" != "v${options.nodeVersion}" ]; then`,
    '  cd /tmp',
    `  curl -fsSLO https://nodejs.org/dist/v${options.nodeVersion}/${node}.tar.xz`,
    `  curl -fsSLO https://nodejs.org/dist/v${options.nodeVersion}/SHASUMS256.txt`,
    `  grep " ${node}.tar.xz\$" SHASUMS256.txt | sha256sum -c -`,
    '  rm -rf /opt/node && mkdir -p /opt/node',
    `  tar -xJf ${node}.tar.xz -C /opt/node --strip-components=1`,
    'fi',
    // Cairn: the sources this stack was synthesised from, with production dependencies only;
    // reinstalled only when the archive changed (a plain reboot keeps the installed copy).
    `SOURCE_SHA256=$(sha256sum ${options.sourceZip} | cut -d' ' -f1)`,
    `if [ "$(cat ${INSTALL_DIR}/.source-sha256 2>/dev/null)" != "$SOURCE_SHA256" ]; then`,
    '  systemctl stop cairn.service || true',
    `  rm -rf ${INSTALL_DIR} && mkdir -p ${INSTALL_DIR}`,
    `  unzip -q ${options.sourceZip} -d ${INSTALL_DIR}`,
    `  (cd ${INSTALL_DIR} && PATH=/opt/node/bin:$PATH npm ci --omit=dev --no-audit --no-fund)`,
    `  echo "$SOURCE_SHA256" > ${INSTALL_DIR}/.source-sha256`,
    'fi',
    'id cairn || useradd --system --home-dir /nonexistent --shell /sbin/nologin cairn',
    `chown -R cairn:cairn ${DATA_DIR}`,
    'mkdir -p /etc/cairn',
    `cat > /etc/cairn/cairn.env <<'CAIRN_ENV'\n${cairnEnvironment(options).join('\n')}\nCAIRN_ENV`,
    `cat > /etc/systemd/system/cairn.service <<'CAIRN_UNIT'\n${systemdUnit().join('\n')}\nCAIRN_UNIT`,
    'systemctl daemon-reload',
    'systemctl enable cairn.service',
    // Picks up a new install, Node.js release, environment or unit.
    'systemctl restart cairn.service',
  ];
}

/** The systemd unit: restarts Cairn on failure; never starts it before the WAL volume is mounted. */
export function systemdUnit(): string[] {
  return [
    '[Unit]',
    'Description=Cairn Durable Streams server',
    'After=network-online.target',
    'Wants=network-online.target',
    `RequiresMountsFor=${DATA_DIR}`,
    '',
    '[Service]',
    'User=cairn',
    'Group=cairn',
    'EnvironmentFile=/etc/cairn/cairn.env',
    `WorkingDirectory=${INSTALL_DIR}`,
    `ExecStart=/opt/node/bin/node ${INSTALL_DIR}/src/cli/main.ts serve`,
    'Restart=always',
    'RestartSec=2',
    // Graceful shutdown (SIGTERM) ends live readers and fsyncs the WAL; give it time.
    'TimeoutStopSec=60',
    // One socket per live reader: 100,000 readers by default (--live-readers-max).
    'LimitNOFILE=1048576',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
}
