/**
 * The CDK app: `cdk synth` / `cdk deploy` from infra/cdk (cdk.json runs this file with Node 24's
 * type stripping). Parameters are context values (`-c name=value`, see ../lib/config.ts). The stack
 * is environment-agnostic unless CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION are set (the CLI sets them
 * from your AWS profile on deploy); synth needs no credentials and makes no lookups.
 */
import { App } from 'aws-cdk-lib';
import { CairnStack } from '../lib/cairn-stack.ts';
import { readStackConfig } from '../lib/config.ts';

const app = new App();
const account = process.env['CDK_DEFAULT_ACCOUNT'];
const region = process.env['CDK_DEFAULT_REGION'];
new CairnStack(app, app.node.tryGetContext('stackName') ?? 'Cairn', {
  config: readStackConfig((key) => app.node.tryGetContext(key)),
  ...(account !== undefined && region !== undefined ? { env: { account, region } } : {}),
  description: 'Cairn Durable Streams server: S3 segments, EC2 with an EBS WAL, CloudFront',
});
app.synth();
