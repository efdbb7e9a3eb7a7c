/**
 * The AWS CDK app (infra/cdk): assertions on the synthesised template for every property the
 * deployment depends on, and the real `cdk synth` CLI run offline into a temporary directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CairnStack } from '../../infra/cdk/lib/cairn-stack.ts';
import { readStackConfig, StackConfigError } from '../../infra/cdk/lib/config.ts';
import { CACHE_KEY_QUERY_STRINGS, EXPOSED_RESPONSE_HEADERS } from '../../infra/cdk/lib/stream-headers.ts';
import { DATA_DIR } from '../../infra/cdk/lib/user-data.ts';
import { LONG_POLL_TIMEOUT_MS_DEFAULT } from '../../src/config/limits.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, '../..');
const CDK_APP_DIR = path.join(REPOSITORY_ROOT, 'infra/cdk');
/** The CLI the README tells users to run; CDK_CLI overrides it (to check another build of the CLI). */
const CDK_CLI = process.env['CDK_CLI'] ?? path.join(REPOSITORY_ROOT, 'node_modules/.bin/cdk');
/** The CLI synthesises in a child process: bounded so a hang fails the test instead of the suite. */
const CDK_SYNTH_TIMEOUT_MS = 150_000;

type Json = Record<string, any>;

/** Output directories of the in-process syntheses (each stages a copy of the source asset). */
const synthesisDirs: string[] = [];
afterAll(async () => {
  await Promise.all(synthesisDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function synthesise(context: Record<string, string> = {}): Template {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'cairn-cdk-app-'));
  synthesisDirs.push(outdir);
  const app = new App({ context, outdir });
  const stack = new CairnStack(app, 'Cairn', { config: readStackConfig((key) => app.node.tryGetContext(key)) });
  return Template.fromStack(stack);
}

function onlyResource(template: Template, type: string): Json {
  const resources = Object.values(template.findResources(type));
  expect(resources, type).toHaveLength(1);
  return resources[0]!;
}

/**
 * The text of a CloudFormation string: `Fn::Join`s flattened, `Fn::Base64` parts shown decoded
 * (the multipart user data base64-encodes its shell part), every other token as `<token>`.
 */
function joined(value: unknown, token = '<token>'): string {
  if (typeof value === 'string') return value;
  const join = (value as Json)['Fn::Join'];
  if (join !== undefined) return (join[1] as unknown[]).map((part) => joined(part, token)).join(join[0]);
  const base64 = (value as Json)['Fn::Base64'];
  if (base64 !== undefined) return joined(base64, token);
  return token;
}

/** Every IAM statement attached to the instance role. */
function serverRoleStatements(template: Template): Json[] {
  const roles = template.findResources('AWS::IAM::Role', {
    Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })] } },
  });
  const roleIds = Object.keys(roles);
  expect(roleIds).toHaveLength(1);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
    (policy['Properties']['Roles'] as Json[]).some((role) => role['Ref'] === roleIds[0]),
  );
  return policies.flatMap((policy) => policy['Properties']['PolicyDocument']['Statement'] as Json[]);
}

describe('CDK stack', () => {
  let template: Template;
  beforeAll(() => {
    template = synthesise();
  });

  test('S3 bucket: encrypted, public access blocked, incomplete multipart uploads aborted, kept on delete', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LifecycleConfiguration: {
          Rules: [Match.objectLike({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })],
        },
      },
    });
  });

  test('the WAL is on its own encrypted gp3 EBS volume, retained, attached by the instance and mounted at the data dir', () => {
    const volume = onlyResource(template, 'AWS::EC2::Volume');
    expect(volume['DeletionPolicy']).toBe('Retain');
    expect(volume['Properties']).toMatchObject({ VolumeType: 'gp3', Encrypted: true, Size: 100 });
    const volumeId = Object.keys(template.findResources('AWS::EC2::Volume'))[0]!;
    // Not a CloudFormation attachment (it could not move to a replacement instance): the boot script attaches it.
    template.resourceCountIs('AWS::EC2::VolumeAttachment', 0);
    const statements = serverRoleStatements(template);
    const attachVolume = statements.find((statement) => statement['Sid'] === 'AttachWalVolume')!;
    expect(attachVolume['Action']).toBe('ec2:AttachVolume');
    expect(JSON.stringify(attachVolume['Resource'])).toContain(`{"Ref":"${volumeId}"}`);
    expect(joined(attachVolume['Resource'])).toMatch(/:volume\/<token>$/);
    const attachTo = statements.find((statement) => statement['Sid'] === 'AttachToThisServer')!;
    expect(attachTo['Action']).toBe('ec2:AttachVolume');
    expect(joined(attachTo['Resource'])).toMatch(/:instance\/\*$/);
    const profileId = Object.keys(template.findResources('AWS::IAM::InstanceProfile'))[0]!;
    expect(attachTo['Condition']).toEqual({ StringEquals: { 'ec2:InstanceProfile': { 'Fn::GetAtt': [profileId, 'Arn'] } } });
    expect(statements.filter((statement) => [statement['Action']].flat().some((action: string) => action.startsWith('ec2:'))).map((statement) => statement['Sid'])).toEqual([
      'AttachWalVolume',
      'AttachToThisServer',
      'DescribeVolumes',
    ]);

    const instance = onlyResource(template, 'AWS::EC2::Instance')['Properties'];
    // No instance-store (ephemeral) device anywhere: only EBS.
    for (const mapping of instance['BlockDeviceMappings'] as Json[]) expect(mapping['VirtualName']).toBeUndefined();
    const userData = joined(instance['UserData']);
    expect(userData).toContain(`CAIRN_DATA_DIR=${DATA_DIR}`);
    expect(userData).toContain(`RequiresMountsFor=${DATA_DIR}`);
    expect(userData).toContain(`mount ${DATA_DIR}`);
    expect(userData).toContain('nvme-Amazon_Elastic_Block_Store_');
    expect(userData).toContain(`WAL_VOLUME_ID='<token>'`);
    expect(userData).toContain('attach-volume --volume-id "$WAL_VOLUME_ID" --instance-id "$INSTANCE_ID"');
    // Formats only a blank volume, so a WAL survives a reinstall.
    expect(userData).toContain('blkid "$WAL_DEVICE" || mkfs.xfs "$WAL_DEVICE"');
    expect(userData).toContain('[scripts-user, always]');
    expect(userData).toContain('CAIRN_OBJECT_STORE=s3');
    expect(userData).toContain('CAIRN_S3_PREFIX=cairn');
    expect(userData).toContain(`CAIRN_LONG_POLL_TIMEOUT_MS=${LONG_POLL_TIMEOUT_MS_DEFAULT}`);
    expect(userData).toContain('https://nodejs.org/dist/v24.');
  });

  test('the boot script is valid bash', async () => {
    const instance = onlyResource(template, 'AWS::EC2::Instance')['Properties'];
    const userData = joined(instance['UserData'], 'TOKEN');
    const script = userData.slice(userData.indexOf('#!/bin/bash'), userData.lastIndexOf('--+AWS+CDK+User+Data+Separator'));
    expect(script.length).toBeGreaterThan(500);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-user-data-'));
    try {
      await writeFile(path.join(dir, 'boot.sh'), script);
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn('bash', ['-n', path.join(dir, 'boot.sh')], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', (exitCode) => resolve({ code: exitCode, stderr }));
      });
      expect(code, stderr).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('IAM: objects only under the prefix, LIST only of the prefix, nothing else on the segment bucket', () => {
    const bucketId = Object.keys(template.findResources('AWS::S3::Bucket'))[0]!;
    const s3Statements = serverRoleStatements(template).filter((statement) =>
      [statement['Action']].flat().some((action: string) => action.startsWith('s3:')),
    );
    const onBucket = s3Statements.filter((statement) => JSON.stringify(statement['Resource']).includes(bucketId));
    expect(onBucket).toEqual([
      {
        Sid: 'SegmentObjects',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/cairn/*']] },
      },
      {
        Sid: 'ListSegmentPrefix',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['cairn/*'] } },
      },
    ]);
    // The only other S3 grant: reading this checkout's source archive (one object of the CDK asset bucket).
    const others = s3Statements.filter((statement) => !onBucket.includes(statement));
    expect(others.map((statement) => [statement['Sid'], statement['Action']])).toEqual([['CairnSource', 's3:GetObject']]);
    expect(joined(others[0]!['Resource'])).toMatch(/\/[0-9a-f]{64}\.zip$/);
    for (const statement of s3Statements) expect([statement['Action']].flat()).not.toContain('s3:*');
  });

  test('the bucket prefix parameter scopes the role', () => {
    const statements = serverRoleStatements(synthesise({ bucketPrefix: 'tenants/blue' }));
    const list = statements.find((statement) => statement['Sid'] === 'ListSegmentPrefix')!;
    expect(list['Condition']).toEqual({ StringLike: { 's3:prefix': ['tenants/blue/*'] } });
    const objects = statements.find((statement) => statement['Sid'] === 'SegmentObjects')!;
    expect(joined(objects['Resource'])).toBe('<token>/tenants/blue/*');
  });

  test('auth: a token file by default, no authentication only when asked for', () => {
    const userDataOf = (context: Record<string, string>) => joined(onlyResource(synthesise(context), 'AWS::EC2::Instance')['Properties']['UserData']);
    const byDefault = joined(onlyResource(template, 'AWS::EC2::Instance')['Properties']['UserData']);
    expect(byDefault).toContain('CAIRN_AUTH_TOKENS_FILE=/etc/cairn/auth-tokens');
    expect(byDefault).not.toContain('CAIRN_ALLOW_UNAUTHENTICATED');
    const open = userDataOf({ allowUnauthenticated: 'true' });
    expect(open).toContain('CAIRN_ALLOW_UNAUTHENTICATED=true');
    expect(open).not.toContain('CAIRN_AUTH_TOKENS_FILE');
    expect(() => readStackConfig((key) => ({ allowUnauthenticated: 'yes' })[key])).toThrow(StackConfigError);
  });

  test('only CloudFront reaches Cairn: port 4437 from the managed origin-facing prefix list', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      IpProtocol: 'tcp',
      FromPort: 4437,
      ToPort: 4437,
      SourcePrefixListId: { 'Fn::GetAtt': [Match.anyValue(), 'PrefixLists.0.PrefixListId'] },
    });
    template.hasResourceProperties('Custom::AWS', {
      Create: Match.serializedJson(
        Match.objectLike({ action: 'describeManagedPrefixLists', parameters: { Filters: [{ Name: 'prefix-list-name', Values: ['com.amazonaws.global.cloudfront.origin-facing'] }] } }),
      ),
    });
    const groups = Object.values(template.findResources('AWS::EC2::SecurityGroup'));
    for (const group of groups) expect(group['Properties']['SecurityGroupIngress']).toBeUndefined();
  });

  test('CloudFront origin: Origin Shield on, read timeout above the long-poll timeout', () => {
    const distribution = onlyResource(template, 'AWS::CloudFront::Distribution')['Properties']['DistributionConfig'];
    const [origin] = distribution['Origins'] as Json[];
    expect(origin!['OriginShield']).toEqual({ Enabled: true, OriginShieldRegion: 'us-east-1' });
    expect(origin!['CustomOriginConfig']).toMatchObject({ HTTPPort: 4437, OriginProtocolPolicy: 'http-only' });
    const readTimeoutSeconds = origin!['CustomOriginConfig']['OriginReadTimeout'] as number;
    expect(readTimeoutSeconds * 1000).toBeGreaterThan(LONG_POLL_TIMEOUT_MS_DEFAULT);
    expect(readTimeoutSeconds).toBeLessThanOrEqual(60);
  });

  test('the long-poll timeout parameter moves the origin read timeout; one CloudFront cannot wait for is refused', () => {
    const distribution = onlyResource(synthesise({ longPollTimeoutMs: '45000' }), 'AWS::CloudFront::Distribution');
    const origin = distribution['Properties']['DistributionConfig']['Origins'][0];
    expect(origin['CustomOriginConfig']['OriginReadTimeout']).toBeGreaterThan(45);
    expect(() => readStackConfig((key) => ({ longPollTimeoutMs: '55000' })[key])).toThrow(StackConfigError);
    expect(() => readStackConfig((key) => ({ bucketPrefix: '/leading' })[key])).toThrow(StackConfigError);
    expect(readStackConfig(() => undefined).longPollTimeoutMs).toBe(LONG_POLL_TIMEOUT_MS_DEFAULT);
  });

  test('cache policies: keyed on exactly offset, live, cursor; Authorization only on the private path', () => {
    const distribution = onlyResource(template, 'AWS::CloudFront::Distribution')['Properties']['DistributionConfig'];
    const policies = template.findResources('AWS::CloudFront::CachePolicy');
    const policyOf = (behavior: Json) => policies[behavior['CachePolicyId']['Ref']]!['Properties']['CachePolicyConfig'];

    const publicPolicy = policyOf(distribution['DefaultCacheBehavior']);
    const privateBehaviors = distribution['CacheBehaviors'] as Json[];
    expect(privateBehaviors.map((behavior) => behavior['PathPattern'])).toEqual(['/v1/stream/private/*']);
    const privatePolicy = policyOf(privateBehaviors[0]!);

    for (const policy of [publicPolicy, privatePolicy]) {
      const key = policy['ParametersInCacheKeyAndForwardedToOrigin'];
      expect(key['QueryStringsConfig']['QueryStringBehavior']).toBe('whitelist');
      expect([...key['QueryStringsConfig']['QueryStrings']].sort()).toEqual([...CACHE_KEY_QUERY_STRINGS].sort());
      expect([...CACHE_KEY_QUERY_STRINGS].sort()).toEqual(['cursor', 'live', 'offset']);
      expect(key['CookiesConfig']['CookieBehavior']).toBe('none');
      // TTLs follow Cairn's Cache-Control; no Cache-Control means not cached.
      expect(policy).toMatchObject({ MinTTL: 0, DefaultTTL: 0, MaxTTL: 365 * 86_400 });
    }
    expect(publicPolicy['ParametersInCacheKeyAndForwardedToOrigin']['HeadersConfig']).toEqual({ HeaderBehavior: 'none' });
    expect(privatePolicy['ParametersInCacheKeyAndForwardedToOrigin']['HeadersConfig']).toEqual({
      HeaderBehavior: 'whitelist',
      Headers: ['Authorization'],
    });
    for (const behavior of [distribution['DefaultCacheBehavior'], privateBehaviors[0]!]) {
      expect(behavior['AllowedMethods']).toEqual(expect.arrayContaining(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']));
      expect(behavior['CachedMethods']).toEqual(['GET', 'HEAD']);
      expect(behavior['ViewerProtocolPolicy']).toBe('https-only');
    }
    // Error answers (a 404 before the create, a 503 under backpressure) are never held at the edge.
    expect(distribution['CustomErrorResponses']).toEqual(expect.arrayContaining([{ ErrorCode: 404, ErrorCachingMinTTL: 0 }, { ErrorCode: 503, ErrorCachingMinTTL: 0 }]));
  });

  test('origin request policy: viewer headers except Host, no extra query strings, no cookies', () => {
    const distribution = onlyResource(template, 'AWS::CloudFront::Distribution')['Properties']['DistributionConfig'];
    const policyId = distribution['DefaultCacheBehavior']['OriginRequestPolicyId']['Ref'];
    expect(distribution['CacheBehaviors'][0]['OriginRequestPolicyId']['Ref']).toBe(policyId);
    const policy = template.findResources('AWS::CloudFront::OriginRequestPolicy')[policyId]!['Properties']['OriginRequestPolicyConfig'];
    expect(policy['HeadersConfig']).toEqual({ HeaderBehavior: 'allExcept', Headers: ['Host'] });
    expect(policy['QueryStringsConfig']).toEqual({ QueryStringBehavior: 'none' });
    expect(policy['CookiesConfig']).toEqual({ CookieBehavior: 'none' });
  });

  describe('response headers policy', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer();
    });
    afterAll(async () => {
      await server.stop();
    });

    test('exposes exactly the headers Cairn exposes (Stream-*, Producer-*, Cairn-*)', async () => {
      const distribution = onlyResource(template, 'AWS::CloudFront::Distribution')['Properties']['DistributionConfig'];
      const policyId = distribution['DefaultCacheBehavior']['ResponseHeadersPolicyId']['Ref'];
      const cors = template.findResources('AWS::CloudFront::ResponseHeadersPolicy')[policyId]!['Properties']['ResponseHeadersPolicyConfig'][
        'CorsConfig'
      ];
      const exposed: string[] = cors['AccessControlExposeHeaders']['Items'];
      expect(exposed).toEqual([...EXPOSED_RESPONSE_HEADERS]);
      expect(cors['OriginOverride']).toBe(false);

      // What a running Cairn sends, so the CDN's list cannot drift from the server's.
      await fetch(`${server.url}/v1/stream/cors`, { method: 'PUT', headers: { 'content-type': 'text/plain' } });
      const response = await fetch(`${server.url}/v1/stream/cors?offset=-1`, { headers: { origin: 'https://example.test' } });
      const fromServer = (response.headers.get('access-control-expose-headers') ?? '').split(',').map((name) => name.trim().toLowerCase());
      expect(new Set(exposed.map((name) => name.toLowerCase()))).toEqual(new Set(fromServer));
      for (const name of ['Stream-Next-Offset', 'Stream-Cursor', 'Stream-Up-To-Date', 'Stream-Closed', 'Producer-Epoch', 'Producer-Seq', 'Producer-Expected-Seq', 'Producer-Received-Seq']) {
        expect(exposed).toContain(name);
      }
    });
  });
});

describe('cdk synth (the real CLI, offline)', () => {
  let outDir: string;
  beforeAll(async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-cdk-out-'));
  });
  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  test(
    'synthesises the stack into a directory without credentials or network',
    async () => {
      const env: NodeJS.ProcessEnv = {
        PATH: `${path.join(REPOSITORY_ROOT, 'node_modules/.bin')}${path.delimiter}${process.env['PATH'] ?? ''}`,
        HOME: outDir,
        CDK_DISABLE_VERSION_CHECK: '1',
        CDK_DISABLE_CLI_TELEMETRY: 'true',
        // No credentials, no instance metadata service, and a proxy that refuses: any attempt to
        // reach AWS or the internet fails instead of waiting.
        AWS_EC2_METADATA_DISABLED: 'true',
        HTTPS_PROXY: 'http://127.0.0.1:9',
        HTTP_PROXY: 'http://127.0.0.1:9',
        NO_PROXY: '',
      };
      if (process.env['CDK_CLI'] === undefined) {
        // aws-cdk 3.0.0 (npm's "latest") cannot read the assemblies aws-cdk-lib 2.276 writes.
        const { version } = JSON.parse(await readFile(path.join(REPOSITORY_ROOT, 'node_modules/aws-cdk/package.json'), 'utf8')) as { version: string };
        expect(version, 'installed aws-cdk CLI: package.json asks for ^2.1148.1, run npm ci').toMatch(/^2\.(11[4-9]\d|1[2-9]\d\d)\./);
      }
      const args = ['synth', '--no-notices', '--no-version-reporting', '--no-asset-metadata', '--output', outDir, '--quiet'];
      const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const child = spawn(CDK_CLI, args, { cwd: CDK_APP_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), CDK_SYNTH_TIMEOUT_MS);
        child.on('error', reject);
        child.on('close', (exitCode) => {
          clearTimeout(timer);
          resolve({ code: exitCode, output });
        });
      });
      expect(code, output).toBe(0);
      const templatePath = path.join(outDir, 'Cairn.template.json');
      expect(existsSync(templatePath), output).toBe(true);
      const written = JSON.parse(await readFile(templatePath, 'utf8')) as Json;
      const types = Object.values(written['Resources'] as Json).map((resource) => resource['Type']);
      for (const type of ['AWS::S3::Bucket', 'AWS::EC2::Instance', 'AWS::EC2::Volume', 'AWS::CloudFront::Distribution', 'AWS::CloudFront::CachePolicy']) {
        expect(types).toContain(type);
      }
    },
    CDK_SYNTH_TIMEOUT_MS + 10_000,
  );
});
