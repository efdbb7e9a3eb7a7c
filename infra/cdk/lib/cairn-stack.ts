/**
 * Cairn on AWS: an S3 bucket for segments, one EC2 instance running Cairn with its WAL on a gp3 EBS
 * volume, and a CloudFront distribution (Origin Shield, protocol-aware cache key) in front of it.
 * README "Deploying" describes the parameters (./config.ts) and what each resource is for.
 */
import path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Size, Stack, type StackProps } from 'aws-cdk-lib';
import {
  AllowedMethods,
  CacheCookieBehavior,
  CacheHeaderBehavior,
  CachePolicy,
  CacheQueryStringBehavior,
  CachedMethods,
  Distribution,
  HttpVersion,
  OriginProtocolPolicy,
  OriginRequestCookieBehavior,
  OriginRequestHeaderBehavior,
  OriginRequestPolicy,
  OriginRequestQueryStringBehavior,
  PriceClass,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
  type BehaviorOptions,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import {
  AmazonLinuxCpuType,
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  GatewayVpcEndpointAwsService,
  Instance,
  InstanceArchitecture,
  InstanceType,
  MachineImage,
  MultipartBody,
  MultipartUserData,
  OperatingSystemType,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  UserData,
  Volume,
  Vpc,
  type IMachineImage,
} from 'aws-cdk-lib/aws-ec2';
import { InstanceProfile, ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import type { CairnStackConfig } from './config.ts';
import { ALLOWED_REQUEST_HEADERS, CACHE_KEY_QUERY_STRINGS, EXPOSED_RESPONSE_HEADERS } from './stream-headers.ts';
import { CAIRN_PORT, bootCommands } from './user-data.ts';

/** The repository root: its sources are shipped to the instance as an S3 asset. */
const REPOSITORY_ROOT = path.resolve(import.meta.dirname, '../../..');

/** Never shipped: dependencies are installed on the instance, local data and outputs stay local. */
const SOURCE_EXCLUDES = ['node_modules', '.git', 'data', 'cdk.out', 'bench/results', 'coverage', '*.cpuprofile', '.env*'];

/** Error statuses CloudFront would otherwise cache for 10 s: a 404 before a create, a 503 under backpressure. */
const UNCACHED_ERROR_STATUSES = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];

/** cloud-init: run the user-data script at every boot (it re-installs Cairn from the current asset). */
const EVERY_BOOT_CLOUD_CONFIG = ['#cloud-config', 'cloud_final_modules:', '  - [scripts-user, always]', ''].join('\n');

/** Name of AWS's managed prefix list of CloudFront's origin-facing addresses. */
const CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST = 'com.amazonaws.global.cloudfront.origin-facing';

export interface CairnStackProps extends StackProps {
  config: CairnStackConfig;
}

export class CairnStack extends Stack {
  constructor(scope: Construct, id: string, props: CairnStackProps) {
    super(scope, id, props);
    const { config } = props;

    // --- Object store: segments and manifests under one prefix.
    const bucket = new Bucket(this, 'SegmentBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // An interrupted upload leaves parts that are billed but never visible: drop them after a day.
      lifecycleRules: [{ id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      // Segments are the streams' history: deleting the stack must not delete them.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // --- Network: one public subnet (CloudFront reaches the instance), S3 through a gateway endpoint.
    const vpc = new Vpc(this, 'Vpc', {
      maxAzs: 1,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: SubnetType.PUBLIC }],
      gatewayEndpoints: { S3: { service: GatewayVpcEndpointAwsService.S3 } },
    });
    const subnet = vpc.publicSubnets[0]!;

    // Only CloudFront may reach Cairn: ingress from AWS's managed prefix list, resolved at deploy time
    // (a lookup at synth time would need credentials).
    const prefixList = new AwsCustomResource(this, 'CloudFrontOriginFacingPrefixList', {
      onUpdate: {
        service: 'EC2',
        action: 'describeManagedPrefixLists',
        parameters: { Filters: [{ Name: 'prefix-list-name', Values: [CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST] }] },
        physicalResourceId: PhysicalResourceId.of(CLOUDFRONT_ORIGIN_FACING_PREFIX_LIST),
        outputPaths: ['PrefixLists.0.PrefixListId'],
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: AwsCustomResourcePolicy.ANY_RESOURCE }),
      installLatestAwsSdk: false,
    });
    const securityGroup = new SecurityGroup(this, 'ServerSecurityGroup', { vpc, description: 'Cairn: HTTP from CloudFront only' });
    securityGroup.addIngressRule(
      Peer.prefixList(prefixList.getResponseField('PrefixLists.0.PrefixListId')),
      Port.tcp(CAIRN_PORT),
      'Cairn from CloudFront origin-facing addresses',
    );

    // --- IAM: objects under the prefix, and listing only that prefix.
    const role = new Role(this, 'ServerRole', { assumedBy: new ServicePrincipal('ec2.amazonaws.com') });
    role.addToPolicy(
      new PolicyStatement({
        sid: 'SegmentObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: [bucket.arnForObjects(`${config.bucketPrefix}/*`)],
      }),
    );
    role.addToPolicy(
      new PolicyStatement({
        sid: 'ListSegmentPrefix',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${config.bucketPrefix}/*`] } },
      }),
    );

    // --- The instance: Cairn from this checkout's sources, Node.js 24, systemd.
    const source = new Asset(this, 'CairnSource', { path: REPOSITORY_ROOT, exclude: SOURCE_EXCLUDES });
    role.addToPolicy(
      new PolicyStatement({ sid: 'CairnSource', actions: ['s3:GetObject'], resources: [source.bucket.arnForObjects(source.s3ObjectKey)] }),
    );

    const instanceType = new InstanceType(config.instanceType);
    const arm = instanceType.architecture === InstanceArchitecture.ARM_64;
    const amiId = config.amiId;
    const machineImage: IMachineImage =
      amiId === undefined
        ? MachineImage.latestAmazonLinux2023({ cpuType: arm ? AmazonLinuxCpuType.ARM_64 : AmazonLinuxCpuType.X86_64 })
        : { getImage: () => ({ imageId: amiId, osType: OperatingSystemType.LINUX, userData: UserData.forLinux() }) };

    const walVolume = new Volume(this, 'WalVolume', {
      availabilityZone: subnet.availabilityZone,
      size: Size.gibibytes(config.walVolumeSizeGib),
      volumeType: EbsDeviceVolumeType.GP3,
      encrypted: true,
      // Acknowledged appends live here until sealed: never delete the volume with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The instance attaches the WAL volume itself at boot (see ./user-data.ts): a replacement
    // instance waits until the previous one has let go of it. It may attach this volume only, and
    // only to an instance with this instance profile.
    const instanceProfile = new InstanceProfile(this, 'ServerInstanceProfile', { role });
    role.addToPolicy(
      new PolicyStatement({
        sid: 'AttachWalVolume',
        actions: ['ec2:AttachVolume'],
        resources: [this.formatArn({ service: 'ec2', resource: 'volume', resourceName: walVolume.volumeId })],
      }),
    );
    role.addToPolicy(
      new PolicyStatement({
        sid: 'AttachToThisServer',
        actions: ['ec2:AttachVolume'],
        resources: [this.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { 'ec2:InstanceProfile': instanceProfile.instanceProfileArn } },
      }),
    );
    // DescribeVolumes has no resource-level permissions.
    role.addToPolicy(new PolicyStatement({ sid: 'DescribeVolumes', actions: ['ec2:DescribeVolumes'], resources: ['*'] }));
    // A shell through SSM Session Manager instead of SSH.
    role.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));

    const script = UserData.forLinux();
    script.addCommands('set -euxo pipefail', `export AWS_DEFAULT_REGION=${this.region}`);
    const sourceZip = script.addS3DownloadCommand({ bucket: source.bucket, bucketKey: source.s3ObjectKey, localFile: '/tmp/cairn-source.zip' });
    script.addCommands(
      ...bootCommands({
        walVolumeId: walVolume.volumeId,
        nodeVersion: config.nodeVersion,
        nodeArch: arm ? 'arm64' : 'x64',
        sourceZip,
        bucketName: bucket.bucketName,
        bucketPrefix: config.bucketPrefix,
        region: this.region,
        longPollTimeoutMs: config.longPollTimeoutMs,
        allowUnauthenticated: config.allowUnauthenticated,
      }),
    );
    // The script runs at every boot, not only the first: `cdk deploy` with new sources changes the
    // user data, CloudFormation stops and starts the instance, and the script installs the new
    // Cairn over the same WAL volume. It is idempotent (a volume is formatted only when blank).
    const userData = new MultipartUserData();
    userData.addPart(MultipartBody.fromRawBody({ contentType: 'text/cloud-config; charset="utf-8"', body: EVERY_BOOT_CLOUD_CONFIG }));
    userData.addUserDataPart(script, MultipartBody.SHELL_SCRIPT, true);

    const instance = new Instance(this, 'Server', {
      vpc,
      vpcSubnets: { subnets: [subnet] },
      instanceType,
      machineImage,
      instanceProfile,
      securityGroup,
      userData,
      requireImdsv2: true,
      associatePublicIpAddress: true,
      blockDevices: [{ deviceName: '/dev/xvda', volume: BlockDeviceVolume.ebs(16, { volumeType: EbsDeviceVolumeType.GP3, encrypted: true }) }],
    });

    // --- CloudFront.
    const origin = new HttpOrigin(instance.instancePublicDnsName, {
      httpPort: CAIRN_PORT,
      protocolPolicy: OriginProtocolPolicy.HTTP_ONLY,
      readTimeout: Duration.seconds(config.originReadTimeoutSeconds),
      keepaliveTimeout: Duration.seconds(60),
      originShieldEnabled: true,
      originShieldRegion: config.originShieldRegion,
    });

    // TTLs come from Cairn's Cache-Control: immutable sealed chunks for a year, tail reads for 60 s,
    // no-store (HEAD, offset=now, 204) never; a response without Cache-Control is not cached.
    const ttls = { defaultTtl: Duration.seconds(0), minTtl: Duration.seconds(0), maxTtl: Duration.days(365) };
    const publicCachePolicy = new CachePolicy(this, 'StreamCachePolicy', {
      comment: 'Cairn public streams: keyed on offset, live, cursor',
      queryStringBehavior: CacheQueryStringBehavior.allowList(...CACHE_KEY_QUERY_STRINGS),
      headerBehavior: CacheHeaderBehavior.none(),
      cookieBehavior: CacheCookieBehavior.none(),
      enableAcceptEncodingGzip: false,
      enableAcceptEncodingBrotli: false,
      ...ttls,
    });
    const privateCachePolicy = new CachePolicy(this, 'PrivateStreamCachePolicy', {
      comment: 'Cairn private streams: keyed on offset, live, cursor and Authorization',
      queryStringBehavior: CacheQueryStringBehavior.allowList(...CACHE_KEY_QUERY_STRINGS),
      headerBehavior: CacheHeaderBehavior.allowList('Authorization'),
      cookieBehavior: CacheCookieBehavior.none(),
      enableAcceptEncodingGzip: false,
      enableAcceptEncodingBrotli: false,
      ...ttls,
    });
    // Every viewer header except Host reaches Cairn (Content-Type, Stream-*, Producer-*, CORS
    // preflight headers); query strings other than the cache key's are not forwarded.
    const originRequestPolicy = new OriginRequestPolicy(this, 'StreamOriginRequestPolicy', {
      comment: 'Cairn: viewer headers except Host; only the cache-key query strings',
      headerBehavior: OriginRequestHeaderBehavior.denyList('Host'),
      queryStringBehavior: OriginRequestQueryStringBehavior.none(),
      cookieBehavior: OriginRequestCookieBehavior.none(),
    });
    const responseHeadersPolicy = new ResponseHeadersPolicy(this, 'StreamResponseHeadersPolicy', {
      comment: 'Cairn: browsers may read the Stream-* and Producer-* headers',
      corsBehavior: {
        accessControlAllowCredentials: false,
        accessControlAllowOrigins: ['*'],
        accessControlAllowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
        accessControlAllowHeaders: [...ALLOWED_REQUEST_HEADERS],
        accessControlExposeHeaders: [...EXPOSED_RESPONSE_HEADERS],
        accessControlMaxAge: Duration.days(1),
        originOverride: false,
      },
    });

    const behavior = (cachePolicy: CachePolicy): BehaviorOptions => ({
      origin,
      viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: AllowedMethods.ALLOW_ALL,
      cachedMethods: CachedMethods.CACHE_GET_HEAD,
      cachePolicy,
      originRequestPolicy,
      responseHeadersPolicy,
      // Bytes go out as Cairn wrote them (SSE streams unbuffered, Content-Length exact).
      compress: false,
    });
    const distribution = new Distribution(this, 'Distribution', {
      comment: 'Cairn Durable Streams',
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      defaultBehavior: behavior(publicCachePolicy),
      additionalBehaviors: { [config.privatePathPattern]: behavior(privateCachePolicy) },
      errorResponses: UNCACHED_ERROR_STATUSES.map((httpStatus) => ({ httpStatus, ttl: Duration.seconds(0) })),
    });

    new CfnOutput(this, 'DistributionDomainName', { value: distribution.distributionDomainName });
    new CfnOutput(this, 'SegmentBucketName', { value: bucket.bucketName });
    new CfnOutput(this, 'InstanceId', { value: instance.instanceId });
    new CfnOutput(this, 'WalVolumeId', { value: walVolume.volumeId });
  }
}
